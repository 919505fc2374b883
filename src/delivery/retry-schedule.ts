/** The documented schedule: attempts at 0, +1 min, +5 min, +15 min, +1 h and +4 h. */
export const DEFAULT_RETRY_SCHEDULE = '0,1m,5m,15m,1h,4h';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, '': 1 };

/**
 * Parses a schedule such as `0,1m,5m,15m,1h,4h`: one delay per attempt, each measured
 * from the previous failure (the first from the event). Units ms, s, m, h; a bare number
 * is milliseconds. Throws with a message naming the bad item.
 */
export function parseRetrySchedule(text: string): number[] {
  const items = text.split(',').map((item) => item.trim());
  if (items.length === 0 || items.length > 20) throw new Error('must list 1 to 20 delays');
  return items.map((item) => {
    const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(item);
    if (!match) throw new Error(`"${item}" is not a delay like 0, 500ms, 30s, 5m or 1h`);
    const ms = Math.round(Number(match[1]) * UNIT_MS[match[2] ?? '']!);
    if (ms > 7 * 24 * 3_600_000) throw new Error(`"${item}" is longer than 7 days`);
    return ms;
  });
}
