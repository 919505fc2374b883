import { holdDurationsOf, WINDOW_MS } from '../domain/alert-rules.js';
import type { TelemetryHistory } from '../domain/ports/telemetry-history.js';
import type { SeriesCalculator, SeriesPlan, SeriesPoint, SeriesTransition } from '../domain/rule-series-service.js';
import { ScopeAggregates } from './aggregates.js';
import { measure, stateOf, transitionEvent } from './evaluate.js';
import { hold, type HoldState } from './hold.js';
import { batchTelemetry, gcd, intervalEnds, rowIntervals } from './series-input.js';

/** Seconds a scope keeps buckets for: pruning more often than this would only cost time. */
const PRUNE_EVERY_SECONDS = 3600;

/**
 * The evaluator's computation replayed over stored telemetry: one ScopeAggregates slid from
 * point to point, exactly as the engine slides a live scope from pass to pass, so each value
 * is what `measure` gives at that moment (same windows, same histogram, same rounding and the
 * same 24-hour rule for count metrics), and each state and transition what the evaluator
 * derives from it. The first point's window is filled before it is measured.
 *
 * Telemetry is added summed per interval of the greatest common divisor of the step and the
 * rule's window (series-input.ts): every window the rule reads at a point is then a whole
 * number of intervals, so the sums give exactly the per-second answer with far fewer
 * additions. (The scope's other windows, which the rule does not read, are not exact.)
 */
export function computeSeries(plan: SeriesPlan, history: TelemetryHistory): { points: SeriesPoint[]; transitions: SeriesTransition[] } {
  const { condition, firstAt, stepMs, count } = plan;
  const endOf = intervalEnds(plan, gcd(stepMs / 1000, WINDOW_MS[condition.window_duration] / 1000));
  const rows = rowIntervals([history.minutes, history.seconds], condition.project_id, endOf);
  const batches = batchTelemetry(plan, history, endOf);
  const firstSecond = Math.floor(firstAt / 1000);
  const scope = new ScopeAggregates(firstSecond, 0);
  // When the scope was seen: rows at their placement, batches at their receipt (as live).
  let lastSeen = history.lastSeenSecond === null ? 0 : history.lastSeenSecond * 1000;
  let row = rows.next();
  let nextBatch = 0;
  let nextSeen = 0;
  let prunedAt = firstSecond;
  // A new rule starts `unknown`, outside any pending or keep-firing period.
  let held: HoldState = { state: 'unknown', pendingSince: null, clearSince: null };
  const durations = holdDurationsOf(condition);
  const points: SeriesPoint[] = new Array(count);
  const transitions: SeriesTransition[] = [];
  for (let i = 0; i < count; i++) {
    const at = firstAt + i * stepMs;
    const head = Math.floor(at / 1000);
    scope.advance(head);
    for (; !row.done && row.value.delta.second <= head; row = rows.next()) {
      scope.add(row.value.delta);
      lastSeen = Math.max(lastSeen, row.value.lastSecond * 1000);
    }
    while (nextBatch < batches.deltas.length && batches.deltas[nextBatch]!.second <= head) scope.add(batches.deltas[nextBatch++]!);
    while (nextSeen < batches.seen.length && batches.seen[nextSeen]! <= at) lastSeen = Math.max(lastSeen, batches.seen[nextSeen++]!);
    scope.lastSeenAt = lastSeen;
    const value = measure(condition, scope, at);
    const previous = held.state;
    // The live evaluator's periods, looked at once per point (live: every second and batch).
    held = hold(held, stateOf(value, condition), at, durations);
    const state = held.state;
    points[i] = { at, value, state };
    if (state !== previous) transitions.push({ at, from_state: previous, to_state: state, value, event_type: transitionEvent(previous, state) ?? null });
    if (head - prunedAt >= PRUNE_EVERY_SECONDS) {
      scope.prune(head);
      prunedAt = head;
    }
  }
  return { points, transitions };
}

export const seriesCalculator: SeriesCalculator = { compute: computeSeries };
