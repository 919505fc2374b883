/**
 * Short durations in the style of `window_duration`: a whole number of seconds, minutes or
 * hours ("30s", "2m", "1h"; "0s" is zero). Used by a series' `step` and by a rule's
 * `pending_duration` and `keep_firing_duration`.
 */
const SHORT_DURATION = /^(0|[1-9][0-9]{0,5})([smh])$/;
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000 } as const;

/** Milliseconds of a duration such as "10s", "1m" or "1h"; NaN when it is not one. */
export function parseShortDuration(text: string): number {
  const match = SHORT_DURATION.exec(text);
  return match ? Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS] : NaN;
}
