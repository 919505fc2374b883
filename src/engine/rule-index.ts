import type { AlertRule } from '../domain/alert-rules.js';
import { toIso } from '../domain/clock.js';
import type { RuleEvaluation } from '../domain/ports/alert-rules-repository.js';
import { shardOf } from '../domain/shards.js';
import { scopeKeyOf } from './scope-registry.js';

/** An enabled rule the engine evaluates, with its latest evaluation. */
export interface Entry {
  rule: AlertRule;
  shard: number;
  scopeKey: string;
  evaluation: RuleEvaluation;
  /** What of the evaluation was last written; a change (unpersisted) is flushed at the next pass. */
  persisted: Persisted;
}

/**
 * What a flush writes when it changed: the value, and the rule's place in its pending and
 * keep-firing periods (so that a restart or a new owner carries on from there).
 */
export type Persisted = Pick<RuleEvaluation, 'current_value' | 'pending_since' | 'keep_firing_since'>;

export function persistedOf(evaluation: RuleEvaluation): Persisted {
  return { current_value: evaluation.current_value, pending_since: evaluation.pending_since ?? null, keep_firing_since: evaluation.keep_firing_since ?? null };
}

/** Whether the evaluation differs from what was written: field comparisons, run for every rule at every pass. */
export function unpersisted(evaluation: RuleEvaluation, persisted: Persisted): boolean {
  return (
    evaluation.current_value !== persisted.current_value ||
    (evaluation.pending_since ?? null) !== persisted.pending_since ||
    (evaluation.keep_firing_since ?? null) !== persisted.keep_firing_since
  );
}

/** The enabled rules held in memory: by id, by scope (what a batch touches) and by shard. */
export interface RuleIndex {
  /** A new entry for the rule, keeping the evaluation of the entry it replaces. */
  entryOf(rule: AlertRule, now: number, existing?: Entry): Entry;
  /** Makes the entry its rule's current one. */
  add(entry: Entry): void;
  /** No longer evaluated (replaced, disabled, deleted, or its shard went). */
  remove(entry: Entry): void;
  get(ruleId: string): Entry | undefined;
  ofScope(scopeKey: string): Iterable<Entry>;
  ofShard(shard: number): Entry[];
  all(): IterableIterator<Entry>;
  readonly size: number;
}

export function createRuleIndex(): RuleIndex {
  const entries = new Map<string, Entry>();
  const byScope = new Map<string, Set<Entry>>();

  return {
    entryOf: (rule, now, existing) => ({
      rule,
      shard: shardOf(rule.account_id),
      scopeKey: scopeKeyOf(rule.account_id, rule.project_id),
      evaluation: existing?.evaluation ?? {
        current_state: rule.current_state,
        since: rule.since,
        last_evaluated_at: rule.last_evaluated_at ?? toIso(now),
        current_value: rule.current_value,
        pending_since: rule.pending_since,
        keep_firing_since: rule.keep_firing_since,
      },
      persisted: existing?.persisted ?? persistedOf(rule),
    }),
    add(entry) {
      entries.set(entry.rule.id, entry);
      let set = byScope.get(entry.scopeKey);
      if (!set) byScope.set(entry.scopeKey, (set = new Set()));
      set.add(entry);
    },
    remove(entry) {
      if (entries.get(entry.rule.id) === entry) entries.delete(entry.rule.id);
      const set = byScope.get(entry.scopeKey);
      set?.delete(entry);
      if (set?.size === 0) byScope.delete(entry.scopeKey);
    },
    get: (ruleId) => entries.get(ruleId),
    ofScope: (scopeKey) => byScope.get(scopeKey) ?? [],
    ofShard: (shard) => [...entries.values()].filter((e) => e.shard === shard),
    all: () => entries.values(),
    get size() {
      return entries.size;
    },
  };
}
