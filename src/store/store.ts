import { accessSync, constants, existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect, sql, type SqliteDatabase, type SqliteStatement } from 'kysely';
import { ConfigError, type DatabaseLocation } from '../config.js';
import type { RetentionStore } from '../domain/retention.js';
import { AppError } from '../domain/errors.js';
import { createAccountsRepository, createApiKeysRepository, type AccountsRepository, type ApiKeysRepository } from './accounts-repository.js';
import { createAlertRulesRepository, type AlertRulesRepository } from './alert-rules-repository.js';
import { createCachedAlertRulesRepository } from './cached-alert-rules-repository.js';
import { sqliteDialect } from './dialect.js';
import { createDeliveriesRepository, type DeliveriesRepository } from './deliveries-repository.js';
import { createAlertEventsRepository, type AlertEventsRepository } from './alert-events-repository.js';
import { createTelemetryRepository, type TelemetryRepository } from './telemetry-repository.js';
import { migrationProvider } from './migrations/index.js';
import { createRetentionRepository } from './retention-repository.js';
import type { Database } from './schema.js';
import { createSecretCipher } from './secret-cipher.js';
import { createServerLeaseRepository, type ServerLeaseRepository } from './server-lease-repository.js';
import { createWebhookEndpointsRepository, type WebhookEndpointsRepository } from './webhook-endpoints-repository.js';

export interface Store {
  readonly db: Kysely<Database>;
  readonly accounts: AccountsRepository;
  readonly apiKeys: ApiKeysRepository;
  readonly alertRules: AlertRulesRepository;
  readonly webhookEndpoints: WebhookEndpointsRepository;
  readonly telemetry: TelemetryRepository;
  readonly alertEvents: AlertEventsRepository;
  readonly deliveries: DeliveriesRepository;
  /** Which server runs on this database (see src/server-lease.ts). */
  readonly serverLease: ServerLeaseRepository;
  /**
   * Resolves when the database takes writes; throws, naming the cause, while the last write
   * failed for a storage reason (disk full, I/O error) and nothing was written since. In that
   * state it first tries a small committed write itself (at most once a second), so that the
   * check recovers once space is freed even when no client writes.
   */
  checkWritable(): Promise<void>;
  /** Deletes webhook deliveries, attempts and alert events past their retention. */
  readonly retention: RetentionStore;
  close(): Promise<void>;
}

export interface OpenStoreOptions {
  location: DatabaseLocation;
  secretKey?: string | undefined;
  /** Attempts each webhook delivery gets: the length of the retry schedule. */
  deliveryAttempts?: number;
}

export class MigrationError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'MigrationError';
  }
}

const reasonOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

/**
 * Creates the folder and any missing parents, one level at a time. (`mkdirSync` with
 * `recursive` never returns for a folder that cannot exist under /proc: Node retries it
 * for ever.) Throws naming the level that could not be created.
 */
function ensureFolder(folder: string, where: string): void {
  const missing: string[] = [];
  for (let dir = folder; !existsSync(dir); dir = dirname(dir)) {
    missing.push(dir);
    if (dirname(dir) === dir) break;
  }
  for (const dir of missing.reverse()) {
    try {
      mkdirSync(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST' && statSync(dir).isDirectory()) continue;
      throw new ConfigError(`${where}: cannot create the folder ${dir}: ${reasonOf(error)}`);
    }
  }
}

/** Why SQLite could not open the file, in words an operator can act on. */
function openFailure(path: string, error: unknown): string {
  const sqliteReason = reasonOf(error);
  try {
    if (statSync(path).isDirectory()) return 'it is a folder, not a file';
    accessSync(path, constants.R_OK | constants.W_OK);
  } catch (access) {
    const code = (access as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') return `${reasonOf(access)} (${sqliteReason})`;
  }
  return sqliteReason;
}

function openSqlite(path: string): BetterSqlite3.Database {
  const where = `DATABASE_URL=${path}`;
  if (path !== ':memory:') ensureFolder(dirname(path), where);
  let sqlite: BetterSqlite3.Database | undefined;
  try {
    sqlite = new BetterSqlite3(path);
    // WAL lets the CLI read while the server writes; FULL makes every commit durable
    // across power loss as well as process crashes. The first pragma reads the file: one
    // that is not a database fails here.
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = FULL');
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('busy_timeout = 5000');
    return sqlite;
  } catch (error) {
    sqlite?.close();
    throw new ConfigError(`${where}: cannot open the database file ${path}: ${openFailure(path, error)}`);
  }
}

const STATEMENT_CACHE_SIZE = 256;

/** SQLite result codes that say the storage is failing, not the statement. */
const STORAGE_FAILURE_CODE = /^SQLITE_(FULL|IOERR|READONLY|CORRUPT|NOTADB|CANTOPEN)/;

/** The last write that failed for a storage reason, until a write succeeds again. */
interface WriteHealth {
  failure: { message: string; since: number } | undefined;
}

/**
 * A statement as Kysely runs it, watched: a storage failure (SQLite's "database or disk is
 * full", an I/O error) is recorded and becomes a 503 AppError carrying the original as its
 * cause; a committed write clears the record.
 *
 * A ROLLBACK when no transaction is active does nothing. SQLite rolls a transaction back by
 * itself on some errors (SQLITE_FULL among them); Kysely then still sends ROLLBACK, and
 * its "cannot rollback - no transaction is active" would replace the error that mattered.
 */
function watchedStatement(sqlite: BetterSqlite3.Database, statement: BetterSqlite3.Statement, text: string, health: WriteHealth): SqliteStatement {
  const isRollback = /^\s*rollback\s*$/i.test(text);
  const isCommit = /^\s*commit\s*$/i.test(text);
  const writes = !statement.readonly;
  const succeeded = () => {
    if (health.failure !== undefined && (isCommit || (writes && !sqlite.inTransaction))) health.failure = undefined;
  };
  const failed = (error: unknown): never => {
    const code = (error as { code?: unknown }).code;
    if (typeof code !== 'string' || !STORAGE_FAILURE_CODE.test(code)) throw error;
    health.failure ??= { message: (error as Error).message, since: Date.now() };
    throw new AppError('unavailable', 'the service cannot store data right now; try again later', undefined, { cause: error });
  };
  return {
    reader: statement.reader,
    all(parameters) {
      try {
        const rows = statement.all(parameters as unknown[]);
        if (writes) succeeded();
        return rows;
      } catch (error) {
        return failed(error);
      }
    },
    run(parameters) {
      if (isRollback && !sqlite.inTransaction) return { changes: 0, lastInsertRowid: 0 };
      try {
        const result = statement.run(parameters as unknown[]);
        succeeded();
        return result;
      } catch (error) {
        return failed(error);
      }
    },
    iterate(parameters) {
      return statement.iterate(parameters as unknown[]);
    },
  };
}

/**
 * Kysely prepares every query anew; preparing costs more than running our small indexed
 * queries, so statements are kept by SQL text (the set of distinct queries is small).
 */
function withStatementCache(sqlite: BetterSqlite3.Database, health: WriteHealth): SqliteDatabase {
  const statements = new Map<string, SqliteStatement>();
  return {
    close: () => sqlite.close(),
    prepare(text: string) {
      let statement = statements.get(text);
      if (statement === undefined) {
        statement = watchedStatement(sqlite, sqlite.prepare(text), text, health);
        if (statements.size >= STATEMENT_CACHE_SIZE) statements.delete(statements.keys().next().value!);
        statements.set(text, statement);
      }
      return statement;
    },
  };
}

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

/** Opens the database, applies pending migrations and returns the repositories. */
export async function openStore(options: OpenStoreOptions): Promise<Store> {
  const health: WriteHealth = { failure: undefined };
  const db = new Kysely<Database>({
    dialect: new SqliteDialect({ database: withStatementCache(openSqlite(options.location.path), health) }),
  });

  const { error, results } = await new Migrator({ db, provider: migrationProvider(sqliteDialect) }).migrateToLatest();
  if (error) {
    await db.destroy();
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    // The words of the database itself (a read-only file, a full disk) say what to fix.
    const root = error instanceof AppError && error.cause !== undefined ? error.cause : error;
    throw new MigrationError(`DATABASE_URL=${options.location.path}: database migration ${failed} failed: ${reasonOf(root)}`, { cause: error });
  }

  const cipher = createSecretCipher(options.secretKey);
  const webhookEndpoints = createWebhookEndpointsRepository(db, cipher);
  await webhookEndpoints.sealPlainSecrets();

  return {
    db,
    accounts: createAccountsRepository(db),
    apiKeys: createApiKeysRepository(db),
    alertRules: createCachedAlertRulesRepository(createAlertRulesRepository(db, options.deliveryAttempts ?? 6)),
    deliveries: createDeliveriesRepository(db),
    serverLease: createServerLeaseRepository(db),
    webhookEndpoints,
    telemetry: createTelemetryRepository(db),
    alertEvents: createAlertEventsRepository(db),
    retention: createRetentionRepository(db),
    checkWritable: writeChecker(db, health),
    close: () => db.destroy(),
  };
}
