import { toIso } from './clock.js';
import { parseShortDuration } from './durations.js';
import type { FieldError } from './errors.js';
import { parseRfc3339 } from './telemetry.js';

/** Most points one series or preview answers (a day at one minute). */
export const MAX_SERIES_POINTS = 1440;
export const DEFAULT_SERIES_SPAN_MS = 60 * 60_000;
export const DEFAULT_SERIES_STEP = '10s';
/**
 * How far `to` may be ahead of the server's clock: a client that sends its own "now" is not
 * turned away for a little clock skew; such a `to` is taken as now. Points after now would
 * show nothing the evaluator has seen.
 */
export const SERIES_CLOCK_SKEW_MS = 60_000;


/** The range as the client gave it: RFC 3339 date-times and a duration such as "10s". */
export interface SeriesRangeInput {
  from?: string | undefined;
  to?: string | undefined;
  step?: string | undefined;
}

/** A valid range: the points are at from + i * step for i = 1 … count, the last one at or before `to`. */
export interface SeriesRange {
  from: number;
  to: number;
  step: string;
  stepMs: number;
  count: number;
}

/** Milliseconds of a step such as "10s", "1m" or "1h"; NaN when it is not one. */
export function parseStep(text: string): number {
  const ms = parseShortDuration(text);
  return ms > 0 ? ms : NaN;
}

/**
 * Checks and completes a range at `now`: defaults (the hour up to now at 10 s), `to` not in
 * the future, `from` within the telemetry retention, at least one point and at most 1,440.
 */
export function parseSeriesRange(input: SeriesRangeInput, now: number, retentionMs: number | null): SeriesRange | { errors: FieldError[] } {
  const errors: FieldError[] = [];
  const time = (field: 'from' | 'to'): number | undefined => {
    const text = input[field];
    if (text === undefined) return undefined;
    const ms = parseRfc3339(text);
    if (Number.isNaN(ms)) errors.push({ field, message: 'must be an RFC 3339 date-time, such as 2026-03-15T10:30:00.000Z' });
    return ms;
  };
  const step = input.step ?? DEFAULT_SERIES_STEP;
  const stepMs = parseStep(step);
  if (Number.isNaN(stepMs)) errors.push({ field: 'step', message: 'must be a whole number of seconds, minutes or hours, such as 10s, 1m or 1h' });
  const givenFrom = time('from');
  const givenTo = time('to');
  if (errors.length > 0) return { errors };

  if (givenTo !== undefined && givenTo > now + SERIES_CLOCK_SKEW_MS) return { errors: [{ field: 'to', message: `must not be in the future (now is ${toIso(now)})` }] };
  const to = givenTo === undefined ? now : Math.min(givenTo, now);
  const from = givenFrom ?? to - DEFAULT_SERIES_SPAN_MS;
  if (from >= to) return { errors: [{ field: 'from', message: 'must be before to' }] };
  if (retentionMs !== null && from < now - retentionMs) {
    return { errors: [{ field: 'from', message: `must not be before ${toIso(now - retentionMs)}: older telemetry is not kept (ALERTS_TELEMETRY_RETENTION)` }] };
  }
  const count = Math.floor((to - from) / stepMs);
  if (count < 1) return { errors: [{ field: 'step', message: 'is longer than the range from from to to: there is no point' }] };
  if (count > MAX_SERIES_POINTS) {
    return { errors: [{ field: 'step', message: `gives ${count.toLocaleString('en-US')} points from from to to; at most ${MAX_SERIES_POINTS.toLocaleString('en-US')} are allowed (a larger step or a shorter range)` }] };
  }
  return { from, to, step, stepMs, count };
}
