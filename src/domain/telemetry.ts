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
    const time = Date.parse(timestamp);
    const timeProblem = Number.isNaN(time) ? 'is not a valid RFC 3339 time' : eventTimeProblem(time, now);
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
    const time = input.timestamp === undefined ? now : Date.parse(input.timestamp);
    const latency = input.latency_ms ?? null;
    if (Number.isNaN(time) || time > now + MAX_FUTURE_MS || time <= now - MAX_AGE_MS || (input.type === 'turn') !== (latency !== null)) {
      (errors ??= []).push(...eventProblems(input, i, now));
      continue;
    }
    events[i] = { type: input.type, project_id: input.project_id ?? null, time, latency_ms: latency };
  }
  return errors ? { errors } : { events };
}
