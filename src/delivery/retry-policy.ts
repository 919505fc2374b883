import type { AttemptOutcome } from '../domain/ports/deliveries-repository.js';
import type { AttemptResult } from '../domain/ports/webhook-client.js';

/** 2xx delivered; timeouts, network errors, 408, 429 and 5xx retried; anything else final. */
export function isRetryable(result: AttemptResult): boolean {
  if (result.statusCode === null) return result.errorClass !== 'blocked_address';
  return result.statusCode === 408 || result.statusCode === 429 || result.statusCode >= 500;
}

/**
 * What an attempt means for its delivery. `attempt` is the 1-based number of the attempt
 * just made; `retrySchedule[n]` is the delay before attempt n + 1.
 */
export function outcomeOf(
  result: AttemptResult,
  attempt: number,
  maxAttempts: number,
  retrySchedule: readonly number[],
  now: number,
): AttemptOutcome {
  if (result.statusCode !== null && result.statusCode >= 200 && result.statusCode < 300) return { kind: 'delivered' };
  const error = result.statusCode !== null ? `HTTP ${result.statusCode}` : `${result.errorClass}: ${result.error}`;
  const attemptsAllowed = Math.min(maxAttempts, retrySchedule.length);
  if (!isRetryable(result) || attempt >= attemptsAllowed) return { kind: 'failed', error };
  return { kind: 'retry', nextAttemptAt: now + retrySchedule[attempt]!, error };
}
