import { Kysely, sql } from 'kysely';
import type { DatabaseLocation } from '../config.js';
import type { Repositories } from '../domain/ports/repositories.js';
import { AppError } from '../domain/errors.js';
import { createAccountsRepository, createApiKeysRepository } from './accounts-repository.js';
import { createAlertRulesRepository } from './alert-rules-repository.js';
import { createCachedAlertRulesRepository } from './cached-alert-rules-repository.js';
import { createCachedSilencesRepository } from './cached-silences-repository.js';
import { createAdapter, type StoreAdapter, type WriteHealth } from './dialect/index.js';
import { createClusterRepository } from './cluster-repository.js';
import type { Notifications } from '../domain/ports/notifications.js';
import { createDeliveriesRepository } from './deliveries-repository.js';
import { createAlertEventsRepository } from './alert-events-repository.js';
import { createTelemetryRepository } from './telemetry-repository.js';
import { createTelemetryRollupRepository } from './telemetry-rollup-repository.js';
import { createTelemetryHistoryRepository } from './telemetry-history-repository.js';
import { migrationProvider } from './migrations/index.js';
import { MigrationError, pendingMigrations, runMigrations } from './migrations/runner.js';
import { createRetentionRepository } from './retention-repository.js';
import { createRuleHistoryRepository } from './rule-history-repository.js';
import type { Database } from './schema.js';
import { sealPlainSecrets } from './seal-secrets.js';
import { createSecretCipher } from './secret-cipher.js';
import { createServerLeaseRepository } from './server-lease-repository.js';
import { createSilencesRepository } from './silences-repository.js';
import { createWebhookEndpointsRepository } from './webhook-endpoints-repository.js';

/** The repositories the domain declares (its ports), implemented on the database, and what only the store has. */
export interface Store extends Repositories {
  readonly db: Kysely<Database>;
  /** Which database implementation serves the store (for logs and operators, never for branching). */
  readonly adapter: StoreAdapter['name'];
  /** Where the database is: a file path, or the URL without its password. */
  readonly location: string;
  /** What opening did to the schema. */
  readonly schema: SchemaReport;
  /** Whether several server processes may share this database (PostgreSQL), or one only (SQLite). */
  readonly multiInstance: boolean;
  /** Wake-ups from the other processes on the database; `start()` it to listen. */
  readonly notifications: Notifications;
  /**
   * Resolves when the database takes writes; throws, naming the cause, while the last write
   * failed for a storage reason (disk full, I/O error) and nothing was written since. In that
   * state it first tries a small committed write itself (at most once a second), so that the
   * check recovers once space is freed even when no client writes.
   */
  checkWritable(): Promise<void>;
  close(): Promise<void>;
}

export interface OpenStoreOptions {
  location: DatabaseLocation;
  secretKey?: string | undefined;
  /** Attempts each webhook delivery gets: the length of the retry schedule. */
  deliveryAttempts?: number;
  /**
   * `apply` (default): pending migrations are applied, under the migration lock, so several
   * processes may start at once. `verify`: a schema that is behind is an error naming
   * `alerts migrate` (for a database user without the right to change the schema).
   */
  migrations?: 'apply' | 'verify';
  /**
   * Re-seal signing secrets stored in plain text before a secret key was configured, under
   * the migration lock, after the migrations. The server's start-up and `alerts migrate` do;
   * the other CLI commands do not.
   */
  sealSecrets?: boolean;
  /** Called when an idle pooled connection fails (PostgreSQL restarted); the pool replaces it. */
  onIdleConnectionError?: (error: Error) => void;
  /** Called when the connection that listens for notifications fails (it is opened again). */
  onNotificationsError?: (error: Error) => void;
  /**
   * PostgreSQL ends a session of ours left idle inside a transaction this long (ms): a process
   * frozen mid-transaction (SIGSTOP, a VM paused, a debugger) would otherwise keep its row locks,
   * and with them a shard lease it no longer renews, for as long as it is frozen. Default 10 s.
   */
  stalledTransactionTimeoutMs?: number;
}

export interface SchemaReport {
  /** Migrations applied by this open, in order (none when the schema was current). */
  applied: readonly string[];
  /** The latest migration this version knows, which the schema is now at. */
  version: string;
  /** Plain-text signing secrets sealed by this open (see OpenStoreOptions.sealSecrets). */
  sealedSecrets: number;
}

export { MigrationError } from './migrations/runner.js';

const reasonOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** How often, at most, checkWritable tries a write of its own while writes are failing. */
const WRITE_PROBE_INTERVAL_MS = 1000;
/** The probe writes (and deletes) this much, enough to need pages of its own. */
const WRITE_PROBE_FILLER = 'x'.repeat(16 * 1024);

function writeChecker(db: Kysely<Database>, health: WriteHealth): () => Promise<void> {
  let lastProbeAt = -Infinity;
  return async () => {
    if (health.failure === undefined) return;
    if (Date.now() - lastProbeAt >= WRITE_PROBE_INTERVAL_MS) {
      lastProbeAt = Date.now();
      try {
        await db.transaction().execute(async (trx) => {
          await sql`insert into health_probe (id, filler) values (1, ${WRITE_PROBE_FILLER})`.execute(trx);
          await sql`delete from health_probe where id = 1`.execute(trx);
        });
      } catch {
        // Still failing: the recorded failure stands.
      }
    }
    const failure = health.failure;
    if (failure !== undefined) {
      throw new Error(`writes are failing since ${new Date(failure.since).toISOString()}: ${failure.message}`);
    }
  };
}

/**
 * Applies pending migrations, or checks that none is pending; returns the names applied, in
 * order, and the version the schema is now at. Throws MigrationError naming the cause.
 */
async function migrate(db: Kysely<Database>, adapter: StoreAdapter, mode: 'apply' | 'verify'): Promise<{ applied: string[]; version: string }> {
  const migrations = await migrationProvider(adapter.migration).getMigrations();
  const version = Object.keys(migrations).sort().at(-1)!;
  if (mode === 'apply') return { applied: await runMigrations(db, adapter, migrations), version };
  const pending = await pendingMigrations(db, migrations);
  if (pending.length > 0) {
    throw new MigrationError(
      `DATABASE_URL=${adapter.display}: the database schema is behind this version (pending: ${pending.join(', ')}); ` +
        'run `alerts migrate` with a user allowed to change the schema, or set ALERTS_AUTO_MIGRATE=on',
    );
  }
  return { applied: [], version };
}

/** Opens the database, applies pending migrations and returns the repositories. */
export async function openStore(options: OpenStoreOptions): Promise<Store> {
  const health: WriteHealth = { failure: undefined };
  const adapter = createAdapter(options.location, health, {
    onIdleError: options.onIdleConnectionError,
    onNotificationsError: options.onNotificationsError,
    stalledTransactionTimeoutMs: options.stalledTransactionTimeoutMs,
  });
  const db = new Kysely<Database>({ dialect: adapter.dialect });
  const cipher = createSecretCipher(options.secretKey);
  const webhookEndpoints = createWebhookEndpointsRepository(db, cipher, adapter);
  const alertRules = createAlertRulesRepository(db, adapter, options.deliveryAttempts ?? 6);
  let schema: SchemaReport;
  try {
    const { applied, version } = await migrate(db, adapter, options.migrations ?? 'apply');
    const sealedSecrets = options.sealSecrets === true ? await sealPlainSecrets(db, adapter, cipher) : 0;
    schema = { applied, version, sealedSecrets };
  } catch (error) {
    await db.destroy();
    if (error instanceof MigrationError) throw error;
    const root = error instanceof AppError && error.cause !== undefined ? error.cause : error;
    throw new MigrationError(`DATABASE_URL=${adapter.display}: cannot prepare the database: ${reasonOf(root)}`, { cause: error });
  }

  return {
    db,
    adapter: adapter.name,
    location: adapter.display,
    schema,
    multiInstance: adapter.multiInstance,
    notifications: adapter.notifications,
    accounts: createAccountsRepository(db),
    apiKeys: createApiKeysRepository(db, adapter),
    // With several processes, other instances' edits, transitions and value flushes are
    // forgotten when they commit (NOTIFY sent inside their transaction).
    alertRules: createCachedAlertRulesRepository(alertRules, adapter.notifications),
    ruleHistory: createRuleHistoryRepository(db),
    // Read on every rule answer: kept in memory, forgotten when any instance changes them.
    silences: createCachedSilencesRepository(createSilencesRepository(db, adapter), adapter.notifications),
    cluster: createClusterRepository(db, adapter),
    deliveries: createDeliveriesRepository(db, adapter),
    serverLease: createServerLeaseRepository(db),
    webhookEndpoints,
    telemetry: createTelemetryRepository(db, adapter),
    telemetryRollups: createTelemetryRollupRepository(db, adapter),
    telemetryHistory: createTelemetryHistoryRepository(db),
    alertEvents: createAlertEventsRepository(db),
    retention: createRetentionRepository(db),
    checkWritable: writeChecker(db, health),
    async close() {
      await adapter.notifications.close();
      await db.destroy();
    },
  };
}
