import type { Metric } from './alert-rules.js';

export const TELEMETRY_EVENT_TYPES = ['call', 'call_crash', 'turn', 'api_error', 'function_error'] as const;
export type TelemetryEventType = (typeof TELEMETRY_EVENT_TYPES)[number];

export const MAX_EVENTS_PER_BATCH = 10_000;
/** Largest turn latency accepted (one hour, in ms). */
export const MAX_LATENCY_MS = 3_600_000;
/** Events further ahead of the receiving clock are rejected. */
export const MAX_FUTURE_MS = 5 * 60_000;
/** Events older than the longest window are rejected: they could never count. */
export const MAX_AGE_MS = 60 * 60_000;
/**
 * How long per-second telemetry (telemetry_seconds) is kept: the longest window plus the
 * accepted lateness plus the accepted lead. A point of a series in the last hour then has its
 * whole window (up to 60 minutes before it) at per-second resolution, late events included.
 * Older telemetry is kept per minute (telemetry_minutes, ALERTS_TELEMETRY_RETENTION).
 */
export const PER_SECOND_RETENTION_MS = 2 * MAX_AGE_MS + MAX_FUTURE_MS;
/** A scope that sent nothing for this long has no data, even for count metrics. */
export const SCOPE_KNOWN_FOR_MS = 24 * 60 * 60_000;

/** A validated event: time in epoch ms. */
export interface TelemetryEvent {
  type: TelemetryEventType;
  project_id: string | null;
  time: number;
  latency_ms: number | null;
}

/** The counters of a second; latency metrics come from the turns' latencies instead. */
export const COUNTERS = ['call', 'call_crash', 'turn', 'api_error', 'function_error'] as const;
export type Counter = (typeof COUNTERS)[number];

/** Every counter at zero. */
export const emptyCounts = (): Record<Counter, number> => ({ call: 0, call_crash: 0, turn: 0, api_error: 0, function_error: 0 });

export const COUNT_METRIC_COUNTER: Partial<Record<Metric, Counter>> = {
  call_volume: 'call',
  call_crashes: 'call_crash',
  api_errors: 'api_error',
  function_errors: 'function_error',
};

export const LATENCY_METRIC_QUANTILE: Partial<Record<Metric, number>> = {
  turn_latency_p50: 0.5,
  turn_latency_p95: 0.95,
};

const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const digit = (text: string, at: number) => {
  const d = text.charCodeAt(at) - 48;
  return d >= 0 && d <= 9 ? d : NaN;
};
const two = (text: string, at: number) => digit(text, at) * 10 + digit(text, at + 1);

/**
 * Epoch ms of an RFC 3339 date-time (`2026-03-15T10:30:00.123Z`, `...+02:00`), or NaN when
 * the text is not one (including impossible dates such as February 30). Parsed by hand:
 * a telemetry batch carries up to 10,000 of them. Fractions beyond milliseconds are cut.
 */
export function parseRfc3339(text: string): number {
  if (text.length < 20 || text.charCodeAt(4) !== 45 || text.charCodeAt(7) !== 45 || text.charCodeAt(13) !== 58 || text.charCodeAt(16) !== 58) return NaN;
  const t = text.charCodeAt(10);
  if (t !== 84 && t !== 116) return NaN;
  const year = two(text, 0) * 100 + two(text, 2);
  const month = two(text, 5);
  const day = two(text, 8);
  const hour = two(text, 11);
  const minute = two(text, 14);
  const second = two(text, 17);
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const maxDay = month === 2 && !leap ? 28 : DAYS_IN_MONTH[month - 1];
  if (!(maxDay !== undefined && day >= 1 && day <= maxDay && hour <= 23 && minute <= 59 && second <= 59)) return NaN;
  let at = 19;
  let ms = 0;
  if (text.charCodeAt(at) === 46) {
    at += 1;
    const start = at;
    let scale = 100;
    while (at < text.length && !Number.isNaN(digit(text, at))) {
      ms += digit(text, at) * scale;
      scale /= 10;
      at += 1;
    }
    if (at === start) return NaN;
    ms = Math.floor(ms);
  }
  let offsetMinutes = 0;
  const zone = text.charCodeAt(at);
  if ((zone === 90 || zone === 122) && at + 1 === text.length) offsetMinutes = 0;
  else if ((zone === 43 || zone === 45) && at + 6 === text.length && text.charCodeAt(at + 3) === 58) {
    const oh = two(text, at + 1);
    const om = two(text, at + 4);
    if (!(oh <= 23 && om <= 59)) return NaN;
    offsetMinutes = (zone === 43 ? 1 : -1) * (oh * 60 + om);
  } else return NaN;
  return Date.UTC(year, month - 1, day, hour, minute, second, ms) - offsetMinutes * 60_000;
}

/** Why an event's time is unacceptable at `now`, or undefined when it is fine. */
export function eventTimeProblem(time: number, now: number): string | undefined {
  if (time > now + MAX_FUTURE_MS) return 'is more than 5 minutes in the future';
  if (time <= now - MAX_AGE_MS) return 'is older than 60 minutes (the longest window)';
  return undefined;
}

/** An event as the API accepts it, after schema validation. */
export interface TelemetryEventInput {
  type: TelemetryEventType;
  project_id?: string | null | undefined;
  timestamp?: string | undefined;
  latency_ms?: number | undefined;
}

/**
 * What the schema cannot check about one event: latency only and always on turns, a time
 * within range. Safe on any value, including an item the schema rejected (its fields are
 * then only checked where they have the right shape).
 */
export function eventProblems(input: unknown, index: number, now: number): { field: string; message: string }[] {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return [];
  const { type, timestamp, latency_ms } = input as Record<string, unknown>;
  const errors: { field: string; message: string }[] = [];
  if (typeof timestamp === 'string') {
    const time = parseRfc3339(timestamp);
    const timeProblem = Number.isNaN(time) ? 'must be an RFC 3339 date-time, such as 2026-03-15T10:30:00.000Z' : eventTimeProblem(time, now);
    if (timeProblem) errors.push({ field: `events[${index}].timestamp`, message: timeProblem });
  }
  if (type === 'turn' && latency_ms === undefined) {
    errors.push({ field: `events[${index}].latency_ms`, message: 'is required for turn events' });
  } else if (type !== 'turn' && TELEMETRY_EVENT_TYPES.includes(type as TelemetryEventType) && latency_ms !== undefined) {
    errors.push({ field: `events[${index}].latency_ms`, message: 'is only allowed on turn events' });
  }
  return errors;
}

/**
 * Checks what the schema cannot and converts the batch in one pass (each timestamp is
 * parsed once); returns every problem when any item is bad.
 */
export function parseTelemetryBatch(
  inputs: readonly TelemetryEventInput[],
  now: number,
): { events: TelemetryEvent[] } | { errors: { field: string; message: string }[] } {
  const events: TelemetryEvent[] = new Array(inputs.length);
  let errors: { field: string; message: string }[] | undefined;
  for (let i = 0; i < inputs.length; i++) {
    const input = inputs[i]!;
    const time = input.timestamp === undefined ? now : parseRfc3339(input.timestamp);
    const latency = input.latency_ms ?? null;
    if (Number.isNaN(time) || time > now + MAX_FUTURE_MS || time <= now - MAX_AGE_MS || (input.type === 'turn') !== (latency !== null)) {
      (errors ??= []).push(...eventProblems(input, i, now));
      continue;
    }
    events[i] = { type: input.type, project_id: input.project_id ?? null, time, latency_ms: latency };
  }
  return errors ? { errors } : { events };
}
