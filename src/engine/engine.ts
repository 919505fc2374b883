import type { Logger } from 'pino';
import type { AlertRule } from '../domain/alert-rules.js';
import { toIso, type Clock } from '../domain/clock.js';
import type { TelemetryEvent } from '../domain/telemetry.js';
import { IDEMPOTENCY_KEY_TTL_MS } from '../domain/telemetry-service.js';
import type { RuleEvaluation } from '../domain/ports/alert-rules-repository.js';
import type { Repositories } from '../domain/ports/repositories.js';
import type { BatchRecord, IdempotencyClaim, IdempotencyRecord } from '../domain/ports/telemetry-repository.js';
import { deltasOf, encodeDeltas, ScopeAggregates, type SecondDelta } from './aggregates.js';
import { alertEventFor } from './alert-event.js';
import { measure, stateOf, transitionEvent } from './evaluate.js';
import { BUILDING, createScopeRegistry, REPLAY_MS, scopeKeyOf } from './scope-registry.js';
import { createTelemetryRecorder } from './telemetry-recorder.js';

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
  /**
   * Durably records a validated batch, then evaluates the rules of the scopes it touched.
   * With an idempotency key already taken (within its window), records nothing and returns
   * the stored key instead.
   */
  ingest(accountId: string, events: readonly TelemetryEvent[], idempotency?: IdempotencyClaim): Promise<{ replayOf?: IdempotencyRecord }>;
  /** A rule was created or changed: (re-)evaluates it now and returns its committed state. */
  ruleChanged(rule: AlertRule): Promise<RuleEvaluation>;
  ruleDeleted(ruleId: string): void;
  /** The latest evaluation of an enabled rule (fresher than the database between flushes). */
  evaluationOf(ruleId: string): RuleEvaluation | undefined;
  /** One pass: slide every window to now, evaluate every enabled rule, flush values. */
  tick(): Promise<void>;
}

export interface EngineDeps {
  store: Repositories;
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

const PRUNE_EVERY_MS = 60_000;

export function createEngine({ store, clock, logger, evaluationIntervalMs, onEventCommitted }: EngineDeps): Engine {
  const registry = createScopeRegistry({ telemetry: store.telemetry, logger });
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

  // Each batch is applied to the scopes as soon as it commits, in commit order; the rules of
  // the scopes it touched are evaluated by its ingest call.
  const record = createTelemetryRecorder(store.telemetry, (batch: BatchRecord & { decoded: readonly SecondDelta[] }, seq) =>
    registry.apply({ seq, accountId: batch.accountId, receivedAt: batch.receivedAt, deltas: batch.decoded }, clock.now()),
  );

  const entryOf = (rule: AlertRule, now: number, existing?: Entry): Entry => ({
    rule,
    scopeKey: scopeKeyOf(rule.account_id, rule.project_id),
    evaluation: existing?.evaluation ?? {
      current_state: rule.current_state,
      since: rule.since,
      last_evaluated_at: rule.last_evaluated_at ?? toIso(now),
      current_value: rule.current_value,
    },
    persistedValue: existing?.persistedValue ?? rule.current_value,
  });

  /** One line per committed state change of a rule: what operators look for first. */
  function logStateChange(rule: AlertRule, from: string, to: string, value: number | null, eventId?: string): void {
    logger.info({ rule_id: rule.id, account_id: rule.account_id, from, to, value, ...(eventId ? { event_id: eventId } : {}) }, `rule state changed: ${from} -> ${to}`);
  }

  /** Makes the entry its rule's current one. */
  function index(entry: Entry): void {
    entries.set(entry.rule.id, entry);
    let set = rulesByScope.get(entry.scopeKey);
    if (!set) rulesByScope.set(entry.scopeKey, (set = new Set()));
    set.add(entry);
  }

  /** A project rule keeps its project's scope while it is enabled: resolves once the scope is built. */
  function retain(rule: AlertRule): Promise<void> | undefined {
    return rule.project_id === null ? undefined : registry.retain(rule.account_id, rule.project_id, clock.now());
  }

  /** An entry that is replaced, disabled or deleted: no longer evaluated, its scope reference let go. */
  function drop(entry: Entry): void {
    if (entries.get(entry.rule.id) === entry) entries.delete(entry.rule.id);
    const set = rulesByScope.get(entry.scopeKey);
    set?.delete(entry);
    if (set?.size === 0) rulesByScope.delete(entry.scopeKey);
    if (entry.rule.project_id !== null) registry.release(entry.rule.account_id, entry.rule.project_id);
  }

  /**
   * Evaluates one rule in memory at once; a state change is written (with its event) in
   * order, and its promise is returned. If the write fails the in-memory state goes back,
   * so the next evaluation detects the transition again: nothing is lost or doubled.
   */
  function evaluate(entry: Entry, now: number, persist = false): Promise<unknown> | undefined {
    const scope = registry.lookup(entry.rule.account_id, entry.rule.project_id);
    // Not while its project's scope is built from storage: half built, it would mislead.
    if (scope === BUILDING) return undefined;
    const previous = entry.evaluation;
    const value = measure(entry.rule, scope, now);
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
    const event = type && alertEventFor(entry.rule, type, previous, next);
    return enqueue(() => store.alertRules.saveEvaluation(entry.rule.account_id, entry.rule.id, next, event)).then(
      (saved) => {
        entry.persistedValue = next.current_value;
        if (saved && state !== previous.current_state) logStateChange(entry.rule, previous.current_state, state, next.current_value, event?.id);
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
    registry.advance(now);
    // Pruning walks every stored second of every scope: once a minute is enough, since a
    // second past the longest window is never read again.
    const pruning = now - lastPruneAt >= PRUNE_EVERY_MS;
    if (pruning) registry.prune(now);
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
      await enqueue(() => store.telemetry.pruneIdempotencyKeys(now - IDEMPOTENCY_KEY_TTL_MS));
    }
  }

  const engine: Engine = {
    async start() {
      const now = clock.now();
      const rules = await store.alertRules.listEnabled();
      for (const rule of rules) index(entryOf(rule, now));
      const projects = rules.flatMap((r) => (r.project_id === null ? [] : [{ accountId: r.account_id, project: r.project_id }]));
      await registry.load(now, projects);
      logger.info({ rules: entries.size, scopes: registry.counts() }, 'evaluation engine loaded');
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

    async ingest(accountId, events, idempotency) {
      const receivedAt = clock.now();
      const deltas = deltasOf(events);
      const projects = [...new Set(deltas.flatMap((d) => (d.project === null ? [] : [d.project])))];
      const recorded = await record({ accountId, receivedAt, deltas: encodeDeltas(deltas), projects, decoded: deltas, idempotency });
      if ('replayOf' in recorded) return { replayOf: recorded.replayOf };
      const touched = recorded.recorded;
      const now = clock.now();
      const pending: Promise<unknown>[] = [];
      for (const key of touched) {
        for (const entry of rulesByScope.get(key) ?? []) {
          const write = evaluate(entry, now);
          if (write) pending.push(write);
        }
      }
      await Promise.all(pending);
      return {};
    },

    async ruleChanged(rule) {
      const existing = entries.get(rule.id);
      if (!rule.enabled) {
        if (existing) drop(existing);
        const now = clock.now();
        // Not evaluated while disabled: "unknown" until it is enabled again.
        const evaluation: RuleEvaluation = {
          current_state: 'unknown',
          since: rule.current_state === 'unknown' && rule.since !== null ? rule.since : toIso(now),
          // A rule that was never evaluated (created disabled) keeps null.
          last_evaluated_at: existing?.evaluation.last_evaluated_at ?? rule.last_evaluated_at,
          current_value: null,
        };
        const from = existing?.evaluation.current_state ?? rule.current_state;
        const saved = await enqueue(() => store.alertRules.saveEvaluation(rule.account_id, rule.id, evaluation));
        if (saved && from !== 'unknown') logStateChange(rule, from, 'unknown', null);
        return evaluation;
      }
      const entry = entryOf(rule, clock.now(), existing);
      index(entry);
      // Retained before the old entry lets go: a rule that keeps its project keeps its scope.
      const built = retain(rule);
      if (existing) drop(existing);
      await built;
      // Changed again or deleted while its scope was built: that later call has the say.
      if (entries.get(rule.id) !== entry) return entry.evaluation;
      const now = clock.now();
      const scope = registry.lookup(rule.account_id, rule.project_id);
      if (scope instanceof ScopeAggregates) scope.advance(Math.floor(now / 1000));
      await evaluate(entry, now, true);
      return entry.evaluation;
    },

    ruleDeleted(ruleId) {
      const entry = entries.get(ruleId);
      if (entry) drop(entry);
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
