import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect, type SqliteDatabase, type SqliteStatement } from 'kysely';
import type { DatabaseLocation } from '../config.js';
import { createAccountsRepository, createApiKeysRepository, type AccountsRepository, type ApiKeysRepository } from './accounts-repository.js';
import { createAlertRulesRepository, type AlertRulesRepository } from './alert-rules-repository.js';
import { createCachedAlertRulesRepository } from './cached-alert-rules-repository.js';
import { sqliteDialect } from './dialect.js';
import { createDeliveriesRepository, type DeliveriesRepository } from './deliveries-repository.js';
import { createAlertEventsRepository, type AlertEventsRepository } from './alert-events-repository.js';
import { createTelemetryRepository, type TelemetryRepository } from './telemetry-repository.js';
import { migrationProvider } from './migrations/index.js';
import type { Database } from './schema.js';
import { createSecretCipher } from './secret-cipher.js';
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

function openSqlite(path: string): BetterSqlite3.Database {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const sqlite = new BetterSqlite3(path);
  // WAL lets the CLI read while the server writes; FULL makes every commit durable
  // across power loss as well as process crashes.
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = FULL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  return sqlite;
}

const STATEMENT_CACHE_SIZE = 256;

/**
 * Kysely prepares every query anew; preparing costs more than running our small indexed
 * queries, so statements are kept by SQL text (the set of distinct queries is small).
 */
function withStatementCache(sqlite: BetterSqlite3.Database): SqliteDatabase {
  const statements = new Map<string, BetterSqlite3.Statement>();
  return {
    close: () => sqlite.close(),
    prepare(text: string) {
      let statement = statements.get(text);
      if (statement === undefined) {
        statement = sqlite.prepare(text);
        if (statements.size >= STATEMENT_CACHE_SIZE) statements.delete(statements.keys().next().value!);
        statements.set(text, statement);
      }
      return statement as unknown as SqliteStatement;
    },
  };
}

/** Opens the database, applies pending migrations and returns the repositories. */
export async function openStore(options: OpenStoreOptions): Promise<Store> {
  const db = new Kysely<Database>({
    dialect: new SqliteDialect({ database: withStatementCache(openSqlite(options.location.path)) }),
  });

  const { error, results } = await new Migrator({ db, provider: migrationProvider(sqliteDialect) }).migrateToLatest();
  if (error) {
    await db.destroy();
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new MigrationError(`database migration ${failed} failed`, { cause: error });
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
    webhookEndpoints,
    telemetry: createTelemetryRepository(db),
    alertEvents: createAlertEventsRepository(db),
    close: () => db.destroy(),
  };
}
