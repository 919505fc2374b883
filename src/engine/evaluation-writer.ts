import type { Metrics } from '../metrics/metrics.js';
import type { Logger } from 'pino';
import { holdDurationsOf, type AlertRule, type AlertState } from '../domain/alert-rules.js';
import { toIso } from '../domain/clock.js';
import type { AlertEvent } from '../domain/ports/alert-events-repository.js';
import type { RuleEvaluation } from '../domain/ports/alert-rules-repository.js';
import type { RuleTransition } from '../domain/ports/rule-history-repository.js';
import { FencedError, type Fence } from '../domain/ports/cluster-repository.js';
import type { Repositories } from '../domain/ports/repositories.js';
import { shardOf } from '../domain/shards.js';
import { alertEventFor } from './alert-event.js';
import { measure, stateOf, transitionEvent } from './evaluate.js';
import { hold, type HoldState } from './hold.js';
import { persistedOf, unpersisted, type Entry, type RuleIndex } from './rule-index.js';
import { BUILDING, type ScopeRegistry } from './scope-registry.js';

/**
 * Evaluations and their writes. A rule is evaluated in memory at once; a state change is
 * written with its event (and the event's deliveries) in one transaction, under the shard's
 * fence, in the order the changes happened; values that changed without a transition are
 * flushed in chunks per shard at each pass.
 */
export interface EvaluationWriter {
  /**
   * Evaluates one rule now; returns the promise of its write when its state changed (or
   * `persist`), undefined otherwise. If the write fails the in-memory state goes back, so the
   * next evaluation detects the transition again (or, when fenced, the shard is dropped and
   * its new owner detects it): nothing is lost or doubled.
   */
  evaluate(entry: Entry, now: number, persist?: boolean, receivedAt?: number): Promise<unknown> | undefined;
  /** Writes the values that changed since they were last written. */
  flushValues(): Promise<void>;
  /** Writes that a disabled rule is `unknown` (its shard's fence permitting); resolves with whether it was saved. */
  saveDisabled(rule: AlertRule, evaluation: RuleEvaluation, from: AlertState): Promise<boolean>;
  /** Runs `write` after every write queued before it. */
  enqueue<T>(write: () => Promise<T>): Promise<T>;
  /** Settles once every queued write has. */
  settled(): Promise<void>;
}

export interface EvaluationWriterDeps {
  store: Repositories;
  logger: Logger;
  registry: ScopeRegistry;
  rules: RuleIndex;
  /** Whether this instance may evaluate and write for the shard now (held and loaded). */
  writable(shard: number): boolean;
  /** The fence of a held shard; undefined without ownership (a single engine owns everything). */
  fenceFor(shard: number): Fence | undefined;
  /** A write was refused by the shard's fence. */
  fenced(shard: number): void;
  onEventCommitted?: () => void;
  metrics?: Pick<Metrics, 'ruleTransitions' | 'detection'> | undefined;
  /** The engine's clock: detection times are measured on it. */
  now(): number;
}

/** Where an evaluation left the rule in its pending and keep-firing periods. */
function holdStateOf(evaluation: RuleEvaluation): HoldState {
  const ms = (iso: string | null | undefined) => (iso == null ? null : Date.parse(iso));
  return { state: evaluation.current_state, pendingSince: ms(evaluation.pending_since), clearSince: ms(evaluation.keep_firing_since) };
}

/** The outcome of an evaluation that has just run. */
type Evaluated = RuleEvaluation & { last_evaluated_at: string };

/**
 * The history row of a state change. The rule's threshold, operator and window are those it
 * was evaluated with: a later PATCH does not rewrite what the rule was then.
 */
function transitionOf(rule: AlertRule, from: AlertState, to: AlertState, value: number | null, at: string, event?: AlertEvent): RuleTransition {
  return {
    from_state: from,
    to_state: to,
    value,
    at,
    event_id: event?.id ?? null,
    event_type: event?.event_type ?? null,
    threshold_value: rule.threshold_value,
    operator: rule.operator,
    window_duration: rule.window_duration,
  };
}

export function createEvaluationWriter(deps: EvaluationWriterDeps): EvaluationWriter {
  const { store, logger, registry, rules, fenceFor } = deps;
  // Transitions are written one after another, in the order they happened in memory.
  let writes: Promise<unknown> = Promise.resolve();
  const enqueue = <T>(write: () => Promise<T>): Promise<T> => {
    const result = writes.then(write);
    writes = result.catch(() => undefined);
    return result;
  };

  function failed(error: unknown, shard: number, what: string, ruleId?: string): void {
    if (error instanceof FencedError) {
      logger.warn({ shard, rule_id: ruleId }, `${what} refused: this instance no longer owns the shard`);
      deps.fenced(shard);
    } else {
      logger.error({ err: error, rule_id: ruleId }, `${what} failed; it will be retried`);
    }
  }

  /** One line per committed state change of a rule: what operators look for first. */
  function logStateChange(rule: AlertRule, from: string, to: string, value: number | null, eventId?: string): void {
    logger.info({ rule_id: rule.id, account_id: rule.account_id, from, to, value, ...(eventId ? { event_id: eventId } : {}) }, `rule state changed: ${from} -> ${to}`);
  }

  return {
    evaluate(entry, now, persist = false, receivedAt) {
      if (!deps.writable(entry.shard)) return undefined;
      const scope = registry.lookup(entry.rule.account_id, entry.rule.project_id);
      // Not while its project's scope is built from storage: half built, it would mislead.
      if (scope === BUILDING) return undefined;
      const previous = entry.evaluation;
      const value = measure(entry.rule, scope, now);
      // The condition, then the rule's pending and keep-firing periods (both 0 by default).
      const held = hold(holdStateOf(previous), stateOf(value, entry.rule), now, holdDurationsOf(entry.rule));
      const state = held.state;
      const at = toIso(now);
      const next: Evaluated = {
        current_state: state,
        since: state === previous.current_state && previous.since !== null ? previous.since : at,
        last_evaluated_at: at,
        current_value: value,
        pending_since: held.pendingSince === null ? null : toIso(held.pendingSince),
        keep_firing_since: held.clearSince === null ? null : toIso(held.clearSince),
      };
      entry.evaluation = next;
      if (state === previous.current_state && !persist) return undefined;
      const type = transitionEvent(previous.current_state, state);
      const event = type && alertEventFor(entry.rule, type, previous, next);
      // A `persist` write without a change of state is not a transition: no history row.
      const transition = state === previous.current_state ? undefined : transitionOf(entry.rule, previous.current_state, state, value, at, event);
      return enqueue(() => store.alertRules.saveEvaluation(entry.rule.account_id, entry.rule.id, next, event, fenceFor(entry.shard), transition)).then(
        (saved) => {
          entry.persisted = persistedOf(next);
          if (saved && state !== previous.current_state) {
            logStateChange(entry.rule, previous.current_state, state, next.current_value, event?.id);
            deps.metrics?.ruleTransitions.inc({ from: previous.current_state, to: state });
          }
          if (saved && event) {
            // Detection: from the batch that moved the rule to its event, committed.
            if (receivedAt !== undefined) deps.metrics?.detection.observe(Math.max(0, deps.now() - receivedAt) / 1000);
            deps.onEventCommitted?.();
          }
        },
        (error: unknown) => {
          if (entry.evaluation === next) entry.evaluation = previous;
          failed(error, entry.shard, 'saving a rule evaluation', entry.rule.id);
        },
      );
    },

    async flushValues() {
      const byShard = new Map<number, Entry[]>();
      for (const entry of rules.all()) {
        if (!unpersisted(entry.evaluation, entry.persisted) || !deps.writable(entry.shard)) continue;
        const list = byShard.get(entry.shard);
        if (list) list.push(entry);
        else byShard.set(entry.shard, [entry]);
      }
      for (const [shard, entries] of byShard) {
        const snapshot = entries.map((entry) => ({ entry, evaluation: entry.evaluation }));
        // Chunks keep each transaction short, so ingestion commits are not held up behind it.
        for (let i = 0; i < snapshot.length; i += 500) {
          const chunk = snapshot.slice(i, i + 500);
          try {
            await enqueue(() =>
              store.alertRules.saveEvaluations(
                chunk.map(({ entry, evaluation }) => ({ accountId: entry.rule.account_id, id: entry.rule.id, evaluation })),
                fenceFor(shard),
              ),
            );
          } catch (error) {
            failed(error, shard, 'saving rule values');
            break;
          }
          for (const { entry, evaluation } of chunk) entry.persisted = persistedOf(evaluation);
        }
      }
    },

    async saveDisabled(rule, evaluation, from) {
      const shard = shardOf(rule.account_id);
      try {
        // Disabling a rule that had a state is a transition to unknown (it sends nothing).
        // The engine sets `since` to the moment of disabling; the fallback only satisfies the type.
        const at = evaluation.since ?? evaluation.last_evaluated_at ?? rule.updated_at;
        const transition = from === 'unknown' ? undefined : transitionOf(rule, from, 'unknown', null, at);
        const saved = await enqueue(() => store.alertRules.saveEvaluation(rule.account_id, rule.id, evaluation, undefined, fenceFor(shard), transition));
        if (saved && from !== 'unknown') {
          logStateChange(rule, from, 'unknown', null);
          deps.metrics?.ruleTransitions.inc({ from, to: 'unknown' });
        }
        return saved;
      } catch (error) {
        failed(error, shard, 'saving a disabled rule');
        throw error;
      }
    },

    enqueue,

    settled: () => writes.then(() => undefined),
  };
}
