import type { AlertRuleSettings, AlertState, NewAlertRuleInput } from './alert-rules.js';
import { settingsFromInput } from './alert-rules.js';
import { checkHoldDurations } from './alert-rules-service.js';
import type { Clock } from './clock.js';
import { invalidRequest, notFound } from './errors.js';
import type { AlertRulesRepository } from './ports/alert-rules-repository.js';
import type { TelemetryHistory, TelemetryHistoryRepository } from './ports/telemetry-history.js';
import { parseSeriesRange, type SeriesRange, type SeriesRangeInput } from './series-range.js';
import { LATENCY_METRIC_QUANTILE, MAX_AGE_MS, SCOPE_KNOWN_FOR_MS } from './telemetry.js';
import { WINDOW_MS } from './alert-rules.js';

/** What a series is computed for: the rule's scope and condition. */
export type RuleCondition = Pick<AlertRuleSettings, 'project_id' | 'metric' | 'operator' | 'threshold_value' | 'window_duration'> &
  Partial<Pick<AlertRuleSettings, 'pending_duration' | 'keep_firing_duration'>>;

/** Where the points are and which telemetry is per minute. */
export interface SeriesPlan {
  condition: RuleCondition;
  /** Epoch ms of the first point; the others follow every stepMs, `count` in all. */
  firstAt: number;
  stepMs: number;
  count: number;
  /** A multiple of 60: seconds at or before it are only known per minute. */
  cutoffSecond: number;
}

export interface SeriesPoint {
  at: number;
  value: number | null;
  state: AlertState;
}

export interface SeriesTransition {
  at: number;
  from_state: AlertState;
  to_state: AlertState;
  value: number | null;
  event_type: 'alerts.triggered' | 'alerts.resolved' | null;
}

/** The evaluator's maths over stored telemetry; the engine implements it (src/engine/series.ts). */
export interface SeriesCalculator {
  /** The value and state at each point, and the transitions from `unknown` (a new rule's state) on. */
  compute(plan: SeriesPlan, history: TelemetryHistory): { points: SeriesPoint[]; transitions: SeriesTransition[] };
}

export interface RuleSeries {
  condition: RuleCondition;
  range: SeriesRange;
  /** Telemetry after this (epoch ms) is per second; a point whose window reaches at or before it is computed per minute. */
  perSecondAfter: number;
  points: SeriesPoint[];
  transitions: SeriesTransition[];
}

export interface RuleSeriesService {
  /** The stored rule's metric and state over the range; 404 when the account has no such rule. */
  series(accountId: string, ruleId: string, range: SeriesRangeInput): Promise<RuleSeries>;
  /** The same for a candidate rule (validated as a create request), with nothing stored. */
  preview(accountId: string, input: NewAlertRuleInput, range: SeriesRangeInput): Promise<RuleSeries>;
}

/**
 * Telemetry older than this before now is read per minute: the per-second rows are kept a
 * little longer (PER_SECOND_RETENTION_MS), so whatever the roll-up's pace they are all there.
 */
const PER_SECOND_SPAN_MS = 2 * MAX_AGE_MS;

export function createRuleSeriesService(deps: {
  rules: Pick<AlertRulesRepository, 'get'>;
  history: TelemetryHistoryRepository;
  calculator: SeriesCalculator;
  clock: Clock;
  telemetryRetentionMs: number | null;
}): RuleSeriesService {
  const { rules, history, calculator, clock } = deps;

  function rangeOf(input: SeriesRangeInput, now: number, part: string): SeriesRange {
    const range = parseSeriesRange(input, now, deps.telemetryRetentionMs);
    if ('errors' in range) throw invalidRequest('validation', `invalid ${part}`, range.errors);
    return range;
  }

  async function compute(accountId: string, condition: RuleCondition, range: SeriesRange, now: number): Promise<RuleSeries> {
    const cutoffSecond = Math.floor((now - PER_SECOND_SPAN_MS) / 60_000) * 60;
    const firstAt = range.from + range.stepMs;
    const lastAt = range.from + range.count * range.stepMs;
    const firstSecond = Math.floor(firstAt / 1000);
    // Latency metrics read histograms only; count metrics counters and when the scope was seen.
    const isLatency = LATENCY_METRIC_QUANTILE[condition.metric] !== undefined;
    const stored = await history.read({
      accountId,
      project: condition.project_id,
      // The first point's whole window, so it starts warm.
      afterSecond: firstSecond - WINDOW_MS[condition.window_duration] / 1000,
      throughSecond: Math.floor(lastAt / 1000),
      cutoffSecond,
      seenAfterSecond: Math.floor((firstAt - SCOPE_KNOWN_FOR_MS) / 1000) - 1,
      latencies: isLatency,
      lastSeen: !isLatency,
    });
    const plan: SeriesPlan = { condition, firstAt, stepMs: range.stepMs, count: range.count, cutoffSecond };
    return { condition, range, perSecondAfter: cutoffSecond * 1000, ...calculator.compute(plan, stored) };
  }

  return {
    async series(accountId, ruleId, input) {
      const now = clock.now();
      const range = rangeOf(input, now, 'query string');
      const rule = await rules.get(accountId, ruleId);
      if (!rule) throw notFound('alert rule', ruleId);
      return compute(accountId, rule, range, now);
    },

    async preview(accountId, input, rangeInput) {
      checkHoldDurations(input);
      const now = clock.now();
      const range = rangeOf(rangeInput, now, 'request body');
      return compute(accountId, settingsFromInput(input), range, now);
    },
  };
}
