import type { AlertRule } from '../domain/alert-rules.js';
import { ID_PREFIX, newId } from '../domain/ids.js';
import type { AlertEvent } from '../domain/ports/alert-events-repository.js';
import type { RuleEvaluation } from '../domain/ports/alert-rules-repository.js';

/** The outbox event of a transition: its row and the exact webhook body it delivers. */
export function alertEventFor(
  rule: AlertRule,
  type: AlertEvent['event_type'],
  previous: RuleEvaluation,
  next: RuleEvaluation & { last_evaluated_at: string },
): AlertEvent {
  const id = newId(ID_PREFIX.event);
  const at = next.last_evaluated_at;
  const alert = {
    id: rule.id,
    name: rule.name,
    project_id: rule.project_id,
    metric: rule.metric,
    operator: rule.operator,
    threshold_value: rule.threshold_value,
    window_duration: rule.window_duration,
    current_value: next.current_value,
    previous_state: previous.current_state,
    triggered_at: type === 'alerts.triggered' ? at : (previous.since ?? at),
    ...(type === 'alerts.resolved' ? { resolved_at: at } : {}),
  };
  return {
    id,
    account_id: rule.account_id,
    rule_id: rule.id,
    event_type: type,
    payload: JSON.stringify({ id, event_type: type, created_at: at, alert }),
    created_at: at,
  };
}
