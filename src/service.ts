import { createMetrics, type Metrics } from './metrics/metrics.js';
import { createReadiness } from './readiness.js';
import { createStreamService } from './domain/stream-service.js';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { createAlertRulesService } from './domain/alert-rules-service.js';
import { createApiKeysService, type ApiKeysService } from './domain/api-keys-service.js';
import { systemClock, type Clock } from './domain/clock.js';
import { createDeliveriesService } from './domain/deliveries-service.js';
import type { WebhookClient } from './domain/ports/webhook-client.js';
import { createRetentionPruner, type RetentionPruner } from './domain/retention.js';
import { createRuleHistoryService } from './domain/rule-history-service.js';
import { createRuleSeriesService } from './domain/rule-series-service.js';
import { createSilencesService } from './domain/silences-service.js';
import { createTelemetryService } from './domain/telemetry-service.js';
import { createWebhookEndpointsService } from './domain/webhook-endpoints-service.js';
import { createAddressGuard } from './delivery/address-guard.js';
import { createWebhookClient, type LookupFunction } from './delivery/webhook-client.js';
import { createDeliveryWorker, type DeliveryWorker } from './delivery/worker.js';
import { createEngine, type Engine } from './engine/engine.js';
import { createTelemetryRollups, type TelemetryRollups } from './engine/telemetry-rollup.js';
import { seriesCalculator } from './engine/series.js';
import { buildHttpApp } from './http/app.js';
import { createCoordinator, type Coordinator } from './cluster/coordinator.js';
import { createRuleRouter } from './cluster/rule-router.js';
import { acquireServerLease, type ServerLease } from './server-lease.js';
import { openStore, type Store } from './store/store.js';

export interface Service {
  readonly app: FastifyInstance;
  readonly store: Store;
  readonly engine: Engine;
  readonly deliveryWorker: DeliveryWorker;
  readonly webhookClient: WebhookClient;
  readonly apiKeys: ApiKeysService;
  /** Deletes alert events, webhook deliveries and attempts past ALERTS_EVENT_RETENTION, and rule history and ended silences past ALERTS_HISTORY_RETENTION, hourly. */
  readonly retention: RetentionPruner;
  /** This instance's membership and shards. */
  readonly coordinator: Coordinator;
  /** Rolls the held shards' telemetry up per second and per minute (every 2 s) and prunes it past retention. */
  readonly rollups: TelemetryRollups;
  /** What GET /metrics reports for this instance. */
  readonly metrics: Metrics;
  /** Stops accepting requests, finishes in-flight ones, stops the engine, closes the database. */
  close(): Promise<void>;
}

export interface ServiceDeps {
  config: Config;
  logger: Logger;
  clock?: Clock;
  /** DNS resolution for webhook hosts; tests map names to loopback addresses. */
  lookup?: LookupFunction;
  /** Another server took this database over (this one stalled past its lease): stop the process. */
  onLeaseLost?: () => void;
}

/** How often a live stream (GET /v1/stream) looks for changes in the database. */
const STREAM_POLL_MS = 500;

/** Wires store, engine, domain and HTTP together and starts the engine; does not listen. */
export async function createService({ config, logger, clock = systemClock, lookup, onLeaseLost }: ServiceDeps): Promise<Service> {
  const store = await openStore({
    location: config.database,
    secretKey: config.secretKey,
    deliveryAttempts: config.delivery.retrySchedule.length,
    migrations: config.autoMigrate ? 'apply' : 'verify',
    sealSecrets: config.autoMigrate,
    onIdleConnectionError: (error) => logger.warn({ err: error }, 'a database connection failed or was ended by the server; the next query opens a new one'),
    onNotificationsError: (error) => logger.warn({ err: error }, 'the connection listening for notifications failed; reconnecting (polling meanwhile)'),
    // A frozen instance's shards are taken at most this long after its lease ran out, not
    // whenever it wakes up (see createPostgresPool); never shorter than 5 s, so a slow moment
    // inside a transaction is not mistaken for a frozen process.
    stalledTransactionTimeoutMs: Math.max(5_000, config.leaseTtlMs),
  });
  if (store.schema.applied.length > 0) logger.info({ database: store.location, applied: store.schema.applied }, 'database schema migrated');
  if (store.schema.sealedSecrets > 0) logger.info({ sealed: store.schema.sealedSecrets }, 'signing secrets stored in plain text were sealed');
  // SQLite: before anything evaluates rules or takes back deliveries in flight, one server
  // per file. PostgreSQL: any number, sharing the shards (src/cluster/).
  const lease: ServerLease | undefined = store.multiInstance
    ? undefined
    : await acquireServerLease({
        repository: store.serverLease,
        databasePath: config.database.display,
        logger,
        onLost: onLeaseLost ?? (() => {}),
      }).catch(async (error: unknown) => {
        await store.close();
        throw error;
      });
  await store.notifications.start();
  // The engine and the coordinator need each other: the engine writes under the
  // coordinator's fences, the coordinator tells the engine which shards it holds.
  const ownership: { coordinator?: Coordinator } = {};
  const metrics = createMetrics();
  const webhookClient = createWebhookClient({
    guard: createAddressGuard(config.delivery.allowedCidrs),
    lookup,
    // Several endpoints may share an origin: connections are bounded by our own limits.
    connectionsPerOrigin: config.delivery.concurrency,
  });
  const engine = createEngine({
    store,
    clock,
    logger,
    evaluationIntervalMs: config.evaluationIntervalMs,
    onEventCommitted: () => deliveryWorker.kick(),
    notifications: store.notifications,
    // Called only from evaluation passes, which run after `rollups` is created. A budget: a
    // backlog of roll-ups (a restart after a burst) must not hold up evaluation.
    rollUp: () => rollups.rollNow({ budgetMs: 250 }),
    metrics,
    ownership: {
      fenceFor: (shard) => ownership.coordinator?.fenceFor(shard),
      fenced: (shard) => ownership.coordinator?.fenced(shard),
    },
  });
  const coordinator = createCoordinator({
    repository: store.cluster,
    notifications: store.notifications,
    logger,
    listener: engine,
    ttlMs: config.leaseTtlMs,
    exclusive: !store.multiInstance,
  });
  ownership.coordinator = coordinator;
  // Folds are exactly once whoever runs them; each instance rolls the shards it holds, so the
  // work is shared as the shards are, and a shard between owners waits at most one TTL.
  const rollups = createTelemetryRollups({
    rollups: store.telemetryRollups,
    clock,
    logger,
    telemetryRetentionMs: config.telemetryRetentionMs,
    shards: () => coordinator.held(),
  });
  const deliveryWorker = createDeliveryWorker({
    instanceId: coordinator.instanceId,
    notifications: store.notifications,
    store,
    clock,
    logger,
    client: webhookClient,
    retrySchedule: config.delivery.retrySchedule,
    concurrency: config.delivery.concurrency,
    perEndpointConcurrency: config.delivery.perEndpointConcurrency,
    perAccountConcurrency: config.delivery.perAccountConcurrency,
    disableEndpointAfterMs: config.delivery.disableEndpointAfterMs,
    pollIntervalMs: 1000,
    stopGraceMs: Math.max(0, config.shutdownTimeoutMs - 1000),
    autoStart: config.delivery.workerEnabled,
    metrics,
  });
  const retention = createRetentionPruner({
    store: store.retention,
    clock,
    retentionMs: config.eventRetentionMs,
    historyRetentionMs: config.historyRetentionMs,
    onPruned: (counts) => logger.info(counts, 'pruned webhook deliveries, alert events, rule history and ended silences past their retention'),
    onError: (error) => logger.error({ err: error }, 'pruning past retention failed'),
  });
  try {
    const apiKeys = createApiKeysService({
      accounts: store.accounts,
      apiKeys: store.apiKeys,
      clock,
      authCacheTtlMs: config.authCacheTtlMs,
      notifications: store.notifications,
    });
    if (config.bootstrapApiKey) {
      const outcome = await apiKeys.ensure('default', config.bootstrapApiKey);
      if (outcome === 'revoked') logger.warn('ALERTS_BOOTSTRAP_API_KEY was revoked earlier and stays revoked');
      else logger.info({ outcome }, 'bootstrap API key ensured for account "default"');
    }
    await engine.start();
    await coordinator.start();
    // The first share of shards is loaded before the API answers.
    await engine.settled();
    if (config.delivery.workerEnabled) await deliveryWorker.start();
    retention.start();
    rollups.start();
    const rules = createAlertRulesService({
      rules: store.alertRules,
      evaluator: createRuleRouter({ engine, notifications: store.notifications, rules: store.alertRules, logger }),
      clock,
      silences: store.silences,
    });
    metrics.readGauges({
      rulesByState: () => engine.rulesByState(),
      queue: () => store.deliveries.queueStats(),
      shardsHeld: () => coordinator.held().length,
      async applyLag() {
        const last = await store.telemetry.lastSequences();
        return coordinator.held().reduce((sum, shard) => sum + Math.max(0, (last.get(shard) ?? 0) - engine.appliedThrough(shard)), 0);
      },
      now: () => clock.now(),
    });
    const app = await buildHttpApp({
      logger,
      apiKeys,
      rules,
      history: createRuleHistoryService({ rules: store.alertRules, history: store.ruleHistory }),
      // From the database alone: any instance answers, whoever owns the account's shard.
      series: createRuleSeriesService({
        rules: store.alertRules,
        history: store.telemetryHistory,
        calculator: seriesCalculator,
        clock,
        telemetryRetentionMs: config.telemetryRetentionMs,
      }),
      endpoints: createWebhookEndpointsService({
        endpoints: store.webhookEndpoints,
        clock,
        onWithdrawn: (endpointId) => deliveryWorker.endpointWithdrawn(endpointId),
      }),
      telemetry: createTelemetryService({ ingestor: engine, clock, idempotencyKeys: store.telemetry }),
      deliveries: createDeliveriesService({
        deliveries: store.deliveries,
        endpoints: store.webhookEndpoints,
        client: webhookClient,
        clock,
        onQueued: () => deliveryWorker.kick(),
      }),
      checkHealth: async () => {
        try {
          await sql`select 1`.execute(store.db);
        } catch (error) {
          throw new Error(`the database does not answer: ${(error as Error).message}`, { cause: error });
        }
        await store.checkWritable();
      },
      http: config.http,
      notReady: createReadiness({
        share: () => coordinator.share(),
        loading: () => engine.loading(),
        workerRunning: () => deliveryWorker.running(),
        workerEnabled: config.delivery.workerEnabled,
      }),
      // From the database: any instance serves any account's stream, and resumes it.
      stream: createStreamService({
        listRules: (accountId) => rules.list(accountId, {}),
        history: store.ruleHistory,
        deliveries: store.deliveries,
        pollMs: STREAM_POLL_MS,
        onError: (error) => logger.warn({ err: error }, 'a live stream could not read the database; retrying'),
      }),
      metrics: { registry: metrics.registry, counters: metrics, token: config.metricsToken },
      // From the database alone: saveEvaluation reads them there, whichever instance evaluates.
      silences: createSilencesService({ silences: store.silences, rules: store.alertRules, clock }),
    });
    return {
      app,
      store,
      engine,
      deliveryWorker,
      webhookClient,
      apiKeys,
      retention,
      coordinator,
      rollups,
      metrics,
      async close() {
        try {
          // Shards are given up at once, so the others take them now, while requests in flight
          // finish (batches then go to the new owners through the database); then what still
          // runs here ends, while the heartbeat keeps its deliveries in flight from being reaped.
          await Promise.all([app.close(), coordinator.stop()]);
          // The roll-up first: it stops after the fold in progress, and an engine pass may be
          // waiting for it (it rolls up before pruning batches).
          await rollups.stop();
          await engine.stop();
          await deliveryWorker.stop();
          await retention.stop();
          await webhookClient.close();
        } finally {
          await coordinator.leave();
          await lease?.release();
          await store.close();
        }
      },
    };
  } catch (error) {
    await coordinator.stop();
    await rollups.stop();
    await engine.stop();
    await deliveryWorker.stop();
    await retention.stop();
    await webhookClient.close();
    await coordinator.leave();
    await lease?.release();
    await store.close();
    throw error;
  }
}
