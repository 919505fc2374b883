import type { AlertState } from '../domain/alert-rules.js';

/**
 * Pending and keep-firing periods (ours; Prometheus' `for` and `keep_firing_for`): a rule goes
 * to `alert` only once its condition has held for `pendingMs`, and leaves `alert` only once
 * it has been clear for `keepFiringMs`. Both 0 (the default) is the published behaviour: the
 * state is the condition's, at once.
 *
 * `condition` is what the rule's value alone says (stateOf): `ok`, `alert` or `no_data`.
 * While pending the state is `ok` (the data is there; the condition has not held long enough)
 * and `pendingSince` says since when the condition holds; while kept firing the state stays
 * `alert` and `clearSince` says since when the condition is clear. Any evaluation that breaks
 * the run starts it again: the condition must hold (or be clear) throughout, as far as the
 * evaluations see it (every second, and after every batch).
 *
 * Pure: the live evaluator (evaluation-writer.ts) and the series replay (series.ts) both use
 * it, so a preview's transitions are the live ones.
 */
export interface HoldState {
  state: AlertState;
  /** Epoch ms since when the condition holds while the rule is not yet in alert; else null. */
  pendingSince: number | null;
  /** Epoch ms since when the condition is clear while the rule is kept in alert; else null. */
  clearSince: number | null;
}

export interface HoldDurations {
  pendingMs: number;
  keepFiringMs: number;
}

export function hold(previous: HoldState, condition: AlertState, now: number, durations: HoldDurations): HoldState {
  if (condition === 'alert') {
    if (previous.state === 'alert') return { state: 'alert', pendingSince: null, clearSince: null };
    const pendingSince = previous.pendingSince ?? now;
    if (now - pendingSince >= durations.pendingMs) return { state: 'alert', pendingSince: null, clearSince: null };
    return { state: 'ok', pendingSince, clearSince: null };
  }
  if (previous.state === 'alert' && durations.keepFiringMs > 0) {
    const clearSince = previous.clearSince ?? now;
    if (now - clearSince < durations.keepFiringMs) return { state: 'alert', pendingSince: null, clearSince };
  }
  return { state: condition, pendingSince: null, clearSince: null };
}
