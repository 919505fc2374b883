import type { AlertRule, AlertRuleFilter, AlertRulePatch, AlertRuleSettings, AlertState } from '../alert-rules.js';
import type { AlertEvent } from './alert-events-repository.js';
import type { Fence } from './cluster-repository.js';
import type { RuleTransition } from './rule-history-repository.js';

/** A rule to insert; without pending or keep-firing periods, none (`0s`). */
export interface NewAlertRuleRow extends Omit<AlertRuleSettings, 'pending_duration' | 'keep_firing_duration'> {
  pending_duration?: string | undefined;
  keep_firing_duration?: string | undefined;
  id: string;
  current_state: AlertState;
  since: string | null;
  created_at: string;
}

export interface AlertRulesRepository {
  /** Inserts the rule unless the account already has `limit` rules; atomic under concurrency. */
  insertWithinLimit(accountId: string, rule: NewAlertRuleRow, limit: number): Promise<AlertRule | 'limit_exceeded'>;
  list(accountId: string, filter: AlertRuleFilter): Promise<AlertRule[]>;
  get(accountId: string, id: string): Promise<AlertRule | undefined>;
  update(accountId: string, id: string, patch: AlertRulePatch, nowIso: string): Promise<AlertRule | undefined>;
  /** Deletes the rule and, in the same transaction, its history. */
  delete(accountId: string, id: string): Promise<boolean>;
  /**
   * Records the outcome of evaluating a rule and, in the same transaction, the event the
   * transition emits and its deliveries; false (and no event) when the rule no longer exists
   * or, for a transition with an event, is no longer enabled (disabled through another
   * instance meanwhile). With a fence, the transaction first checks it and throws
   * FencedError, writing nothing, when this instance no longer owns the rule's shard.
   * A `transition` (a change of state) is added to the rule's history in that transaction,
   * only when the rule row was updated.
   * Silences (ours): the event gets no deliveries when a silence of the account matches the
   * rule (its id, project and metric as stored) at the event's time; the silence is read in
   * this transaction, so one committed through any instance counts, and the history row
   * names it (`silence_id`).
   */
  saveEvaluation(
    accountId: string,
    id: string,
    evaluation: RuleEvaluation,
    event?: AlertEvent,
    fence?: Fence,
    transition?: RuleTransition,
  ): Promise<boolean>;
  /** Records many evaluations that emit nothing, in one transaction (fenced like saveEvaluation). */
  saveEvaluations(evaluations: readonly { accountId: string; id: string; evaluation: RuleEvaluation }[], fence?: Fence): Promise<void>;
  /** The enabled rules of the accounts of one shard, for the shard's owner. */
  listEnabled(shard: number): Promise<AlertRule[]>;
}

export interface RuleEvaluation {
  current_state: AlertState;
  since: string | null;
  /** Null for a rule that has never been evaluated (one created disabled). */
  last_evaluated_at: string | null;
  current_value: number | null;
  /** Ours (pending and keep-firing periods): where the rule is in them; absent is null. */
  pending_since?: string | null;
  keep_firing_since?: string | null;
}
