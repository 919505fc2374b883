import type { Logger } from 'pino';
import type { AlertRule } from '../domain/alert-rules.js';
import { toIso, type Clock } from '../domain/clock.js';
import { ID_PREFIX, newId } from '../domain/ids.js';
import { MAX_AGE_MS, MAX_FUTURE_MS, SCOPE_KNOWN_FOR_MS, type TelemetryEvent } from '../domain/telemetry.js';
import type { AlertEvent } from '../store/alert-events-repository.js';
import type { RuleEvaluation } from '../store/alert-rules-repository.js';
import type { Store } from '../store/store.js';
import type { BatchRecord } from '../store/telemetry-repository.js';
import { decodeDeltas, deltasOf, encodeDeltas, ScopeAggregates, type SecondDelta } from './aggregates.js';
import { measure, stateOf, transitionEvent } from './evaluate.js';

export type { RuleEvaluation };

/**
 * The evaluation engine: per-scope aggregates of telemetry, every enabled rule evaluated
 * against them, state transitions committed together with their outbox events.
 */
export interface Engine {
  /** Loads rules and the last hour of telemetry, evaluates everything, starts the timer. */
  start(): Promise<void>;
  /** Stops the timer and waits for pending writes. */
  stop(): Promise<void>;
  /** Durably records a validated batch, then evaluates the rules of the scopes it touched. */
  ingest(accountId: string, events: readonly TelemetryEvent[]): Promise<void>;
  /** A rule was created or changed: (re-)evaluates it now and returns its committed state. */
  ruleChanged(rule: AlertRule): Promise<RuleEvaluation>;
  ruleDeleted(ruleId: string): void;
  /** The latest evaluation of an enabled rule (fresher than the database between flushes). */
  evaluationOf(ruleId: string): RuleEvaluation | undefined;
  /** One pass: slide every window to now, evaluate every enabled rule, flush values. */
  tick(): Promise<void>;
}

export interface EngineDeps {
  store: Store;
  clock: Clock;
  logger: Logger;
  /** Timer period; 0 disables the timer (tests drive `tick`). */
  evaluationIntervalMs: number;
  /** Called after an event (and its deliveries) is committed. */
  onEventCommitted?: () => void;
}

/** The outcome of an evaluation that has just run. */
type Evaluated = RuleEvaluation & { last_evaluated_at: string };

interface Entry {
  rule: AlertRule;
  scopeKey: string;
  evaluation: RuleEvaluation;
  persistedValue: number | null;
}

const accountScopeKey = (accountId: string) => `${accountId}\u0001`;
const projectScopeKey = (accountId: string, project: string) => `${accountId}\u0000${project}`;
const scopeKeyOf = (rule: AlertRule) =>
  rule.project_id === null ? accountScopeKey(rule.account_id) : projectScopeKey(rule.account_id, rule.project_id);

/** Telemetry kept for replay: the longest window plus the furthest accepted future. */
const REPLAY_MS = MAX_AGE_MS + MAX_FUTURE_MS;
const PRUNE_EVERY_MS = 60_000;

export function createEngine({ store, clock, logger, evaluationIntervalMs, onEventCommitted }: EngineDeps): Engine {
  const scopes = new Map<string, ScopeAggregates>();
  const entries = new Map<string, Entry>();
  const rulesByScope = new Map<string, Set<Entry>>();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let lastPruneAt = 0;
  // Transitions are written one after another, in the order they happened in memory.
  let writes: Promise<unknown> = Promise.resolve();
  const enqueue = <T>(write: () => Promise<T>): Promise<T> => {
    const result = writes.then(write);
    writes = result.catch(() => undefined);
    return result;
  };

  function scopeFor(key: string, now: number, lastSeenAt: number): ScopeAggregates {
    let scope = scopes.get(key);
    if (!scope) {
      scope = new ScopeAggregates(Math.floor(now / 1000), lastSeenAt);
      scopes.set(key, scope);
    } else {
      scope.advance(Math.floor(now / 1000));
      scope.lastSeenAt = Math.max(scope.lastSeenAt, lastSeenAt);
    }
    return scope;
  }

  /** A project's scope, linked to its account's scope (which reads the project's seconds). */
  function projectScopeFor(accountId: string, project: string, now: number, lastSeenAt: number): ScopeAggregates {
    const scope = scopeFor(projectScopeKey(accountId, project), now, lastSeenAt);
    scopeFor(accountScopeKey(accountId), now, lastSeenAt).adopt(scope);
    return scope;
  }

  /** Adds deltas to the project scopes and the account scope; returns the scope keys touched. */
  function apply(accountId: string, deltas: readonly SecondDelta[], receivedAt: number, now: number): Set<string> {
    const touched = new Set<string>([accountScopeKey(accountId)]);
    const account = scopeFor(accountScopeKey(accountId), now, receivedAt);
    for (const delta of deltas) {
      if (delta.project === null) {
        account.add(delta);
      } else {
        projectScopeFor(accountId, delta.project, now, receivedAt).add(delta);
        account.addFromChild(delta);
        touched.add(projectScopeKey(accountId, delta.project));
      }
    }
    return touched;
  }

  // Group commit: batches that arrive in the same turn of the event loop are written in
  // one transaction, so concurrent senders share an fsync instead of queueing for one each.
  let recordQueue: { batch: BatchRecord; done: (error?: unknown) => void }[] = [];
  function recordDurably(batch: BatchRecord): Promise<void> {
    return new Promise((resolve, reject) => {
      recordQueue.push({ batch, done: (error) => (error === undefined ? resolve() : reject(error)) });
      if (recordQueue.length === 1) setImmediate(flushRecords);
    });
  }
  function flushRecords(): void {
    const group = recordQueue;
    recordQueue = [];
    store.telemetry.record(group.map((g) => g.batch)).then(
      () => group.forEach((g) => g.done()),
      (error: unknown) => group.forEach((g) => g.done(error ?? new Error('recording telemetry failed'))),
    );
  }

  function index(entry: Entry): void {
    let set = rulesByScope.get(entry.scopeKey);
    if (!set) rulesByScope.set(entry.scopeKey, (set = new Set()));
    set.add(entry);
  }

  function unindex(entry: Entry): void {
    const set = rulesByScope.get(entry.scopeKey);
    set?.delete(entry);
    if (set?.size === 0) rulesByScope.delete(entry.scopeKey);
  }

  function eventFor(entry: Entry, type: AlertEvent['event_type'], previous: RuleEvaluation, next: Evaluated): AlertEvent {
    const { rule } = entry;
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

  /**
   * Evaluates one rule in memory at once; a state change is written (with its event) in
   * order, and its promise is returned. If the write fails the in-memory state goes back,
   * so the next evaluation detects the transition again: nothing is lost or doubled.
   */
  function evaluate(entry: Entry, now: number, persist = false): Promise<unknown> | undefined {
    const previous = entry.evaluation;
    const value = measure(entry.rule, scopes.get(entry.scopeKey), now);
    const state = stateOf(value, entry.rule);
    const at = toIso(now);
    const next: Evaluated = {
      current_state: state,
      since: state === previous.current_state && previous.since !== null ? previous.since : at,
      last_evaluated_at: at,
      current_value: value,
    };
    entry.evaluation = next;
    if (state === previous.current_state && !persist) return undefined;
    const type = transitionEvent(previous.current_state, state);
    const event = type && eventFor(entry, type, previous, next);
    return enqueue(() => store.alertRules.saveEvaluation(entry.rule.account_id, entry.rule.id, next, event)).then(
      (saved) => {
        entry.persistedValue = next.current_value;
        if (saved && event) onEventCommitted?.();
      },
      (error: unknown) => {
        if (entry.evaluation === next) entry.evaluation = previous;
        logger.error({ err: error, rule_id: entry.rule.id }, 'saving a rule evaluation failed; it will be retried');
      },
    );
  }

  async function flushValues(): Promise<void> {
    const changed = [...entries.values()].filter((e) => e.evaluation.current_value !== e.persistedValue);
    if (changed.length === 0) return;
    const snapshot = changed.map((e) => ({ entry: e, evaluation: e.evaluation }));
    // Chunks keep each transaction short, so ingestion commits are not held up behind it.
    for (let i = 0; i < snapshot.length; i += 500) {
      const chunk = snapshot.slice(i, i + 500);
      await enqueue(() =>
        store.alertRules.saveEvaluations(
          chunk.map(({ entry, evaluation }) => ({ accountId: entry.rule.account_id, id: entry.rule.id, evaluation })),
        ),
      );
      for (const { entry, evaluation } of chunk) entry.persistedValue = evaluation.current_value;
    }
  }

  async function pass(): Promise<void> {
    const now = clock.now();
    const second = Math.floor(now / 1000);
    for (const scope of scopes.values()) scope.advance(second);
    // Pruning walks every stored second of every scope: once a minute is enough, since a
    // second past the longest window is never read again.
    const pruning = now - lastPruneAt >= PRUNE_EVERY_MS;
    if (pruning) {
      for (const [key, scope] of scopes) {
        scope.prune(second);
        if (scope.isEmpty && scope.children.size === 0 && scope.lastSeenAt <= now - SCOPE_KNOWN_FOR_MS) {
          scopes.delete(key);
          scope.parent?.children.delete(scope);
        }
      }
    }
    const pending: Promise<unknown>[] = [];
    for (const entry of entries.values()) {
      const write = evaluate(entry, now);
      if (write) pending.push(write);
    }
    await Promise.all(pending);
    await flushValues();
    if (pruning) {
      lastPruneAt = now;
      await enqueue(() => store.telemetry.pruneBefore(now - REPLAY_MS));
    }
  }

  const engine: Engine = {
    async start() {
      const now = clock.now();
      for (const scope of await store.telemetry.scopesSeenSince(now - SCOPE_KNOWN_FOR_MS)) {
        if (scope.project_key === '') scopeFor(accountScopeKey(scope.account_id), now, Number(scope.last_seen_at));
        else projectScopeFor(scope.account_id, scope.project_key, now, Number(scope.last_seen_at));
      }
      // In pages, so an hour of telemetry is never all in memory at once as text.
      for (let afterSeq = 0; ; ) {
        const page = await store.telemetry.batchesSince(now - REPLAY_MS, afterSeq, 2000);
        for (const batch of page) apply(batch.account_id, decodeDeltas(batch.deltas), Number(batch.received_at), now);
        if (page.length < 2000) break;
        afterSeq = page[page.length - 1]!.seq;
      }
      for (const rule of await store.alertRules.listEnabled()) {
        const entry: Entry = {
          rule,
          scopeKey: scopeKeyOf(rule),
          evaluation: {
            current_state: rule.current_state,
            since: rule.since,
            last_evaluated_at: rule.last_evaluated_at ?? toIso(now),
            current_value: rule.current_value,
          },
          persistedValue: rule.current_value,
        };
        entries.set(rule.id, entry);
        index(entry);
      }
      logger.info({ rules: entries.size, scopes: scopes.size }, 'evaluation engine loaded');
      await engine.tick();
      if (evaluationIntervalMs > 0) {
        timer = setInterval(() => {
          // A pass still running (a very large account set) makes this tick a no-op.
          if (!running) void engine.tick();
        }, evaluationIntervalMs);
        timer.unref();
      }
    },

    async stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      await running;
      await writes;
      await flushValues().catch((error: unknown) => logger.error({ err: error }, 'final flush of rule values failed'));
    },

    async ingest(accountId, events) {
      const receivedAt = clock.now();
      const deltas = deltasOf(events);
      const projects = [...new Set(deltas.flatMap((d) => (d.project === null ? [] : [d.project])))];
      await recordDurably({ accountId, receivedAt, deltas: encodeDeltas(deltas), projects });
      const now = clock.now();
      const touched = apply(accountId, deltas, receivedAt, now);
      const pending: Promise<unknown>[] = [];
      for (const key of touched) {
        for (const entry of rulesByScope.get(key) ?? []) {
          const write = evaluate(entry, now);
          if (write) pending.push(write);
        }
      }
      await Promise.all(pending);
    },

    async ruleChanged(rule) {
      const now = clock.now();
      const existing = entries.get(rule.id);
      if (existing) unindex(existing);
      if (!rule.enabled) {
        entries.delete(rule.id);
        // Not evaluated while disabled: "unknown" until it is enabled again.
        const evaluation: RuleEvaluation = {
          current_state: 'unknown',
          since: rule.current_state === 'unknown' && rule.since !== null ? rule.since : toIso(now),
          // A rule that was never evaluated (created disabled) keeps null.
          last_evaluated_at: existing?.evaluation.last_evaluated_at ?? rule.last_evaluated_at,
          current_value: null,
        };
        await enqueue(() => store.alertRules.saveEvaluation(rule.account_id, rule.id, evaluation));
        return evaluation;
      }
      const entry: Entry = {
        rule,
        scopeKey: scopeKeyOf(rule),
        evaluation: existing?.evaluation ?? {
          current_state: rule.current_state,
          since: rule.since,
          last_evaluated_at: rule.last_evaluated_at ?? toIso(now),
          current_value: rule.current_value,
        },
        persistedValue: existing?.persistedValue ?? rule.current_value,
      };
      entries.set(rule.id, entry);
      index(entry);
      scopes.get(entry.scopeKey)?.advance(Math.floor(now / 1000));
      await evaluate(entry, now, true);
      return entry.evaluation;
    },

    ruleDeleted(ruleId) {
      const entry = entries.get(ruleId);
      if (!entry) return;
      entries.delete(ruleId);
      unindex(entry);
    },

    evaluationOf: (ruleId) => entries.get(ruleId)?.evaluation,

    tick() {
      if (running) return running;
      running = pass()
        .catch((error: unknown) => logger.error({ err: error }, 'evaluation pass failed'))
        .finally(() => {
          running = undefined;
        });
      return running;
    },
  };
  return engine;
}
