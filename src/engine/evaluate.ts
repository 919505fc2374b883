import type { AlertRule, AlertState, Operator } from '../domain/alert-rules.js';
import { COUNT_METRIC_COUNTER, LATENCY_METRIC_QUANTILE, SCOPE_KNOWN_FOR_MS } from '../domain/telemetry.js';
import type { ScopeAggregates } from './aggregates.js';

/**
 * The value of a rule's metric over its window, or null when there is nothing to evaluate:
 * a latency metric with no turns in the window, or a count metric of a scope that sent no
 * telemetry in the last 24 hours (a quiet but known scope counts 0).
 */
export function measure(rule: Pick<AlertRule, 'metric' | 'window_duration'>, scope: ScopeAggregates | undefined, now: number): number | null {
  const counter = COUNT_METRIC_COUNTER[rule.metric];
  if (counter !== undefined) {
    if (!scope || scope.lastSeenAt <= now - SCOPE_KNOWN_FOR_MS) return null;
    return scope.count(counter, rule.window_duration);
  }
  const quantile = scope?.quantile(LATENCY_METRIC_QUANTILE[rule.metric]!, rule.window_duration);
  return quantile === undefined ? null : Math.round(quantile);
}

export function breached(value: number, operator: Operator, threshold: number): boolean {
  switch (operator) {
    case '>':
      return value > threshold;
    case '<':
      return value < threshold;
    case '>=':
      return value >= threshold;
    case '<=':
      return value <= threshold;
  }
}

export function stateOf(value: number | null, rule: Pick<AlertRule, 'operator' | 'threshold_value'>): AlertState {
  if (value === null) return 'no_data';
  return breached(value, rule.operator, rule.threshold_value) ? 'alert' : 'ok';
}

/** The event a transition emits: into alert fires, alert to ok resolves, anything else is silent. */
export function transitionEvent(previous: AlertState, next: AlertState): 'alerts.triggered' | 'alerts.resolved' | undefined {
  if (next === 'alert' && previous !== 'alert') return 'alerts.triggered';
  if (previous === 'alert' && next === 'ok') return 'alerts.resolved';
  return undefined;
}
