import type { AlertState, Operator, WindowDuration } from '../alert-rules.js';
import type { AlertEvent } from './alert-events-repository.js';

/**
 * One state change of a rule, as the evaluator saw it: written in the transaction that
 * changes the rule's state (AlertRulesRepository.saveEvaluation). The rule's settings are
 * copied because a later PATCH must not rewrite what the rule was when it changed.
 */
export interface RuleTransition {
  from_state: AlertState;
  to_state: AlertState;
  /** The measured value; null when there was none (no data, or the rule was disabled). */
  value: number | null;
  /** ISO-8601 UTC with milliseconds. */
  at: string;
  /** The event the transition emitted; both null for transitions that send nothing. */
  event_id: string | null;
  event_type: AlertEvent['event_type'] | null;
  threshold_value: number;
  operator: Operator;
  window_duration: WindowDuration;
}

/** A stored transition; `seq` grows with every row written and orders the history. */
export interface RuleHistoryEntry extends RuleTransition {
  seq: number;
  /**
   * The silence (ours) that held the transition's event back: written, but sent to no
   * endpoint. Null when the event was sent, or the transition sent nothing.
   */
  silence_id: string | null;
}

export interface RuleHistoryRepository {
  /**
   * Up to `limit` transitions of one rule of one account, newest first, only those with a
   * seq below `beforeSeq` when given (the next page after a row already seen).
   */
  page(accountId: string, ruleId: string, limit: number, beforeSeq?: number): Promise<RuleHistoryEntry[]>;
  /**
   * Up to `limit` transitions of every rule of an account with a seq above `afterSeq`, oldest
   * first: what a live stream sends. An account's transitions are written by its shard's one
   * owner, one at a time, so its seqs commit in order and a reader never skips one.
   */
  after(accountId: string, afterSeq: number, limit: number): Promise<(RuleHistoryEntry & { rule_id: string })[]>;
  /** The highest history seq written (0 when none). */
  lastSeq(): Promise<number>;
}
