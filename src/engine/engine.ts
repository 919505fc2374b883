import type { Metrics } from '../metrics/metrics.js';
import type { Logger } from 'pino';
import type { AlertRule } from '../domain/alert-rules.js';
import { toIso, type Clock } from '../domain/clock.js';
import type { TelemetryEvent } from '../domain/telemetry.js';
import { IDEMPOTENCY_KEY_TTL_MS } from '../domain/telemetry-service.js';
import type { RuleEvaluation } from '../domain/ports/alert-rules-repository.js';
import type { Fence, HeldShard } from '../domain/ports/cluster-repository.js';
import { CHANNELS, type Notifications } from '../domain/ports/notifications.js';
import type { Repositories } from '../domain/ports/repositories.js';
import type { BatchRecord, IdempotencyClaim, IdempotencyRecord } from '../domain/ports/telemetry-repository.js';
import { ALL_SHARDS, shardOf } from '../domain/shards.js';
import { deltasOf, encodeDeltas, ScopeAggregates, type SecondDelta } from './aggregates.js';
import { createRuleIndex, type Entry } from './rule-index.js';
import { createScopeRegistry, REPLAY_MS } from './scope-registry.js';
import { createEvaluationWriter } from './evaluation-writer.js';
import { createShardApplier } from './shard-applier.js';
import { createTelemetryRecorder } from './telemetry-recorder.js';

export type { RuleEvaluation };

/**
 * The evaluation engine of the shards this instance owns: per-scope aggregates of their
 * telemetry, every enabled rule of their accounts evaluated against them, state transitions
 * committed together with their outbox events, each write fenced by the shard's lease.
 */
export interface Engine {
  /** Starts the timer and the wake-ups; without `ownership`, takes every shard and loads them. */
  start(): Promise<void>;
  /** Stops the timer and waits for pending writes. */
  stop(): Promise<void>;
  /** Shards taken (coordinator): each is loaded in its turn, then evaluated. */
  gained(shards: readonly HeldShard[]): void;
  /** Shards gone: their rules and scopes are dropped; resolves once their writes ended. */
  lost(shards: readonly number[]): Promise<void>;
  /** How far the shard's telemetry is applied here. */
  appliedThrough(shard: number): number;
  /** Whether this instance owns the account's shard (its rules are evaluated here). */
  owns(accountId: string): boolean;
  /** Settles once every held shard is loaded and its committed telemetry applied. */
  settled(): Promise<void>;
  /**
   * Durably records a validated batch; when the account's shard is held here, applies it and
   * evaluates the rules of the scopes it touched before resolving. With an idempotency key
   * already taken (within its window), records nothing and returns the stored key instead.
   */
  ingest(accountId: string, events: readonly TelemetryEvent[], idempotency?: IdempotencyClaim): Promise<{ replayOf?: IdempotencyRecord }>;
  /**
   * A rule was created or changed: (re-)evaluates it now and returns its committed state;
   * undefined when its shard is not held here (its owner evaluates it).
   */
  ruleChanged(rule: AlertRule): Promise<RuleEvaluation | undefined>;
  /** A rule was deleted; false when its shard is not held here. */
  ruleDeleted(accountId: string, ruleId: string): boolean;
  /** The latest evaluation of an enabled rule held here (fresher than the database between flushes). */
  evaluationOf(ruleId: string): RuleEvaluation | undefined;
  /** Enabled rules evaluated here, by state (GET /metrics). */
  rulesByState(): Record<string, number>;
  /** Shards held here whose rules and telemetry are still being loaded (GET /readyz). */
  loading(): number[];
  /** One pass: slide every window to now, evaluate every enabled rule, flush values. */
  tick(): Promise<void>;
}

/** Who may write for a shard: the coordinator's leases. */
export interface Ownership {
  fenceFor(shard: number): Fence | undefined;
  /** A write was refused by the shard's fence. */
  fenced(shard: number): void;
}

export interface EngineDeps {
  store: Repositories;
  clock: Clock;
  logger: Logger;
  /** Timer period; 0 disables the timer (tests drive `tick`). */
  evaluationIntervalMs: number;
  /** Called after an event (and its deliveries) is committed. */
  onEventCommitted?: () => void;
  /** Absent: this engine owns every shard, unfenced (benchmarks, tools). */
  ownership?: Ownership;
  /** Telemetry committed by other processes wakes its shard's owner. */
  notifications?: Notifications;
  /**
   * Rolls stored batches up (telemetry-rollup.ts); run before batches are pruned, since only
   * rolled-up batches are, so that the prune takes every batch old enough.
   */
  rollUp?: () => Promise<unknown>;
  /** Transitions, pass durations and detection times (GET /metrics). */
  metrics?: EngineMetrics;
}

export type EngineMetrics = Pick<Metrics, 'ruleTransitions' | 'evaluationPass' | 'detection'>;

const PRUNE_EVERY_MS = 60_000;
/** With notifications live, held shards still look for missed batches this often. */
const SAFETY_POLL_MS = 5_000;
/** Rules changed through other instances are also picked up by a reread this often. */
const RECONCILE_MS = 10_000;

export function createEngine(deps: EngineDeps): Engine {
  const { store, clock, logger, evaluationIntervalMs, onEventCommitted, notifications } = deps;
  const registry = createScopeRegistry({ telemetry: store.telemetry, logger });
  const rules = createRuleIndex();
  /**
   * Held shards (the applier holds their turns) whose load has completed: only their rules are
   * evaluated (a half-loaded shard would mislead). Without ownership every shard is held, unfenced.
   */
  const loaded = new Set<number>();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let lastPruneAt = 0;
  let lastPollAt = 0;
  let lastReconcileAt = 0;
  const fenceFor = (shard: number): Fence | undefined => deps.ownership?.fenceFor(shard);
  /** Whether writes for the shard may be attempted (held; fenced by the database when owned). */
  const writable = (shard: number) => loaded.has(shard) && (deps.ownership === undefined || fenceFor(shard) !== undefined);

  const writer = createEvaluationWriter({
    store,
    logger,
    registry,
    rules,
    writable,
    fenceFor,
    fenced: (shard) => deps.ownership?.fenced(shard),
    onEventCommitted,
    metrics: deps.metrics,
    now: () => clock.now(),
  });
  const evaluate = writer.evaluate;

  const applier = createShardApplier({
    telemetry: store.telemetry,
    logger,
    now: () => clock.now(),
    apply: (batch) => registry.apply(batch, clock.now()),
    evaluate: (touched, batch) => {
      const now = clock.now();
      const pending: Promise<unknown>[] = [];
      for (const key of touched) {
        for (const entry of rules.ofScope(key)) {
          const write = evaluate(entry, now, false, batch.receivedAt);
          if (write) pending.push(write);
        }
      }
      return Promise.all(pending);
    },
    appliedThrough: (shard) => registry.appliedThrough(shard),
  });

  // Each committed batch is offered to its shard's turn (applied there if the shard is held).
  const record = createTelemetryRecorder(store.telemetry, (batch: BatchRecord & { decoded: readonly SecondDelta[] }, outcome) =>
    applier.committed({ shard: outcome.shard, seq: outcome.shardSeq, accountId: batch.accountId, receivedAt: batch.receivedAt, deltas: batch.decoded }),
  );

  /** A project rule keeps its project's scope while it is enabled: resolves once the scope is built. */
  function retain(rule: AlertRule): Promise<void> | undefined {
    return rule.project_id === null ? undefined : registry.retain(rule.account_id, rule.project_id, clock.now());
  }

  /** An entry that is replaced, disabled or deleted: no longer evaluated, its scope reference let go. */
  function drop(entry: Entry): void {
    rules.remove(entry);
    if (entry.rule.project_id !== null) registry.release(entry.rule.account_id, entry.rule.project_id);
  }

  /** Loads a shard just taken (in its turn): its rules, its scopes, then evaluates them. */
  async function load(shard: number): Promise<number> {
    const now = clock.now();
    const enabled = await store.alertRules.listEnabled(shard);
    for (const entry of rules.ofShard(shard)) rules.remove(entry);
    for (const rule of enabled) rules.add(rules.entryOf(rule, now));
    const projects = enabled.flatMap((r) => (r.project_id === null ? [] : [{ accountId: r.account_id, project: r.project_id }]));
    const applied = await registry.loadShard(shard, now, projects);
    if (!applier.holds(shard)) return applied;
    loaded.add(shard);
    const evaluatedAt = clock.now();
    registry.advance(evaluatedAt);
    await Promise.all(rules.ofShard(shard).map((entry) => evaluate(entry, evaluatedAt)));
    return applied;
  }

  /** Rereads the held shards' rules: a change made through another instance whose request was missed. */
  async function reconcile(): Promise<void> {
    for (const shard of [...loaded]) {
      const stored = await store.alertRules.listEnabled(shard);
      await applier.inTurn(shard, async () => {
        const ids = new Set(stored.map((r) => r.id));
        for (const entry of rules.ofShard(shard)) if (!ids.has(entry.rule.id)) drop(entry);
        for (const rule of stored) {
          const held = rules.get(rule.id);
          if (!held || held.rule.updated_at !== rule.updated_at) await changeRule(rule);
        }
      });
    }
  }

  async function pass(): Promise<void> {
    const started = performance.now();
    const now = clock.now();
    registry.advance(now);
    // Pruning walks every stored second of every scope: once a minute is enough, since a
    // second past the longest window is never read again.
    const pruning = now - lastPruneAt >= PRUNE_EVERY_MS;
    if (pruning) registry.prune(now);
    const pending: Promise<unknown>[] = [];
    for (const entry of rules.all()) {
      const write = evaluate(entry, now);
      if (write) pending.push(write);
    }
    await Promise.all(pending);
    await writer.flushValues();
    deps.metrics?.evaluationPass.observe((performance.now() - started) / 1000);
    // Notifications wake the owners; polling covers those lost while a connection was down.
    const wall = Date.now();
    if (deps.ownership && (notifications?.live !== true || wall - lastPollAt >= SAFETY_POLL_MS)) {
      lastPollAt = wall;
      applier.wakeAll();
    }
    if (deps.ownership && wall - lastReconcileAt >= RECONCILE_MS) {
      lastReconcileAt = wall;
      await reconcile().catch((error: unknown) => logger.error({ err: error }, 'rereading rules failed'));
    }
    if (pruning) {
      lastPruneAt = now;
      await deps.rollUp?.().catch((error: unknown) => logger.error({ err: error }, 'telemetry roll-up before pruning batches failed'));
      await writer.enqueue(() => store.telemetry.pruneBefore(now - REPLAY_MS));
      await writer.enqueue(() => store.telemetry.pruneIdempotencyKeys(now - IDEMPOTENCY_KEY_TTL_MS));
    }
  }

  /** A rule created or changed, in its shard's turn. */
  async function changeRule(rule: AlertRule): Promise<RuleEvaluation> {
    const existing = rules.get(rule.id);
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
        pending_since: null,
        keep_firing_since: null,
      };
      await writer.saveDisabled(rule, evaluation, existing?.evaluation.current_state ?? rule.current_state);
      return evaluation;
    }
    const entry = rules.entryOf(rule, clock.now(), existing);
    rules.add(entry);
    // Retained before the old entry lets go: a rule that keeps its project keeps its scope.
    const built = retain(rule);
    if (existing) drop(existing);
    await built;
    // Changed again or deleted while its scope was built: that later call has the say.
    if (rules.get(rule.id) !== entry) return entry.evaluation;
    const now = clock.now();
    const scope = registry.lookup(rule.account_id, rule.project_id);
    if (scope instanceof ScopeAggregates) scope.advance(Math.floor(now / 1000));
    await evaluate(entry, now, true);
    return entry.evaluation;
  }

  const engine: Engine = {
    async start() {
      notifications?.listen(CHANNELS.telemetry, (payload) => {
        const [shard, origin] = payload.split(':');
        // Batches committed by this process were offered to the applier already.
        if (origin !== notifications.origin) applier.wake(Number(shard));
      });
      notifications?.onResync(() => {
        applier.wakeAll();
        lastReconcileAt = 0;
      });
      if (!deps.ownership) {
        engine.gained(ALL_SHARDS.map((shard) => ({ shard, epoch: 0 })));
        await engine.settled();
        logger.info({ rules: rules.size, scopes: registry.counts() }, 'evaluation engine loaded');
        await engine.tick();
      }
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
      await applier.idle();
      await writer.settled();
      await writer.flushValues().catch((error: unknown) => logger.error({ err: error }, 'final flush of rule values failed'));
    },

    gained(shards) {
      for (const { shard } of shards) {
        loaded.delete(shard);
        applier
          .take(shard, () => load(shard))
          .then(
            () => logger.debug({ shard, rules: rules.ofShard(shard).length }, 'shard loaded'),
            (error: unknown) => {
              logger.error({ err: error, shard }, 'loading a shard failed; giving it up so that it is taken again');
              deps.ownership?.fenced(shard);
            },
          );
      }
    },

    async lost(shards) {
      for (const shard of shards) {
        loaded.delete(shard);
        applier.drop(shard);
        for (const entry of rules.ofShard(shard)) rules.remove(entry);
        registry.dropShard(shard);
      }
      // Writes already queued end (committed, or refused by their fence) before the lease goes.
      await writer.settled();
    },

    appliedThrough: (shard) => registry.appliedThrough(shard),

    owns: (accountId) => applier.holds(shardOf(accountId)),

    settled: () => applier.idle(),

    async ingest(accountId, events, idempotency) {
      const receivedAt = clock.now();
      const deltas = deltasOf(events);
      const projects = [...new Set(deltas.flatMap((d) => (d.project === null ? [] : [d.project])))];
      const recorded = await record({ accountId, receivedAt, deltas: encodeDeltas(deltas), projects, decoded: deltas, idempotency });
      if ('replayOf' in recorded) return { replayOf: recorded.replayOf };
      // Applied and evaluated when the shard is held here (`committed` resolved after that).
      await recorded.recorded;
      return {};
    },

    async ruleChanged(rule) {
      return applier.inTurn(shardOf(rule.account_id), () => changeRule(rule));
    },

    ruleDeleted(accountId, ruleId) {
      const shard = shardOf(accountId);
      if (!applier.holds(shard)) return false;
      void applier.inTurn(shard, () => {
        const entry = rules.get(ruleId);
        if (entry) drop(entry);
      });
      return true;
    },

    evaluationOf: (ruleId) => rules.get(ruleId)?.evaluation,

    rulesByState() {
      const counts: Record<string, number> = {};
      for (const entry of rules.all()) counts[entry.evaluation.current_state] = (counts[entry.evaluation.current_state] ?? 0) + 1;
      return counts;
    },

    loading: () => ALL_SHARDS.filter((shard) => applier.holds(shard) && !loaded.has(shard)),

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
