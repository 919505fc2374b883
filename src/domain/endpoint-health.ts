import { toIso } from './clock.js';

/**
 * Endpoints that keep failing are disabled by the service (ALERTS_ENDPOINT_DISABLE_AFTER):
 * once every attempt since the first failure after the last success has failed for that long.
 */

export const DEFAULT_ENDPOINT_DISABLE_AFTER = '5d';
const MIN_DISABLE_AFTER_MS = 60_000;
const MAX_DISABLE_AFTER_MS = 3650 * 86_400_000;
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses ALERTS_ENDPOINT_DISABLE_AFTER: `5d`, `36h`, `90m`, `600s`, or `0` (never). Returns
 * milliseconds, or null for never; throws with a message naming the problem.
 */
export function parseDisableAfter(text: string): number | null {
  const trimmed = text.trim();
  if (trimmed === '0') return null;
  const match = /^(\d{1,7})(s|m|h|d)$/.exec(trimmed);
  if (!match) throw new Error(`"${text}" is not a duration like 5d, 36h or 90m, or 0 (never disable)`);
  const ms = Number(match[1]) * UNIT_MS[match[2]!]!;
  if (ms < MIN_DISABLE_AFTER_MS || ms > MAX_DISABLE_AFTER_MS) throw new Error(`"${text}" must be between 1m and 3650d, or 0 (never disable)`);
  return ms;
}

/** "5 days", "36 hours", "1 minute": the largest unit that divides it. */
export function describeDuration(ms: number): string {
  for (const [unit, size] of [['day', 86_400_000], ['hour', 3_600_000], ['minute', 60_000], ['second', 1000]] as const) {
    if (ms % size === 0) {
      const n = ms / size;
      return `${n} ${unit}${n === 1 ? '' : 's'}`;
    }
  }
  return `${ms} ms`;
}

/** Whether an endpoint failing since `failingSince` (epoch ms) is to be disabled at `now`. */
export function failingTooLong(failingSince: number | null, now: number, disableAfterMs: number | null): failingSince is number {
  return disableAfterMs !== null && failingSince !== null && now - failingSince >= disableAfterMs;
}

/** What the endpoint's `disabled_reason` says. */
export function autoDisableReason(disableAfterMs: number, failingSince: number, lastError: string): string {
  return `every delivery failed for ${describeDuration(disableAfterMs)} (since ${toIso(failingSince)}; last error: ${lastError})`;
}

/** The `last_error` of a delivery the service did not send because it had disabled its endpoint. */
export function notSentWhileDisabled(reason: string): string {
  return `not sent: the service disabled the endpoint: ${reason}`;
}
