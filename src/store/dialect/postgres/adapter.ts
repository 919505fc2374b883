import { PostgresDialect, sql, type SqlBool } from 'kysely';
import type { StoreAdapter } from '../adapter.js';
import { guardConnection, type WriteHealth } from '../guard.js';
import { createPostgresPool } from './connection.js';
import { createPostgresNotifications, SCHEMA_SUFFIX_SQL } from './notifications.js';
import { classifyPostgresError } from './errors.js';

/**
 * The advisory lock migrations hold (the id Kysely's migrator used, so a process of an
 * earlier version migrating at the same time waits for it too).
 */
const MIGRATION_LOCK_ID = '3853314791062309107';

/** The database's clock, epoch ms: clock_timestamp(), not now() (the start of the transaction). */
export const POSTGRES_NOW = sql<number>`(floor(extract(epoch from clock_timestamp()) * 1000))::bigint`;

export interface PostgresAdapterOptions {
  url: string;
  display: string;
  poolSize: number;
  /** idle_in_transaction_session_timeout of every pooled connection (ms). */
  stalledTransactionTimeoutMs: number;
  health: WriteHealth;
  onIdleError(error: Error): void;
  /** The listening connection failed (it is opened again). */
  onNotificationsError(error: Error): void;
}

/** A PostgreSQL database shared by any number of processes, through a pool of connections. */
export function createPostgresAdapter(options: PostgresAdapterOptions): StoreAdapter {
  const pool = createPostgresPool(options.url, options.poolSize, options.stalledTransactionTimeoutMs, options.onIdleError);
  return {
    multiInstance: true,
    rowLocks: true,
    now: POSTGRES_NOW,
    notifications: createPostgresNotifications(options.url, pool, options.onNotificationsError),
    async notifyWithin(trx, channel, payload) {
      await sql`select pg_notify(${channel} || '_' || ${sql.raw(SCHEMA_SUFFIX_SQL)}, ${payload})`.execute(trx);
    },
    // One array parameter per column, whatever the number of keys.
    keysIn: (columns, keys) =>
      sql<SqlBool>`(${sql.join(columns.map((c) => sql.ref(c.name)))}) in (select * from unnest(${sql.join(
        columns.map((c, i) => sql`${keys.map((key) => key[i])}::${sql.raw(c.type)}[]`),
      )}))`,
    name: 'postgres',
    display: options.display,
    dialect: new PostgresDialect({
      pool,
      onCreateConnection: async (connection) => guardConnection(connection, classifyPostgresError, options.health),
    }),
    migration: {
      autoIncrementType: 'bigserial',
      autoIncrement: (column) => column.primaryKey(),
    },
    // The wire protocol counts parameters in 16 bits.
    maxParameters: 65_535,
    async withMigrationLock(db, fn) {
      return db.transaction().execute(async (trx) => {
        await sql`select pg_advisory_xact_lock(${sql.lit(MIGRATION_LOCK_ID)}::bigint)`.execute(trx);
        return fn(trx);
      });
    },
    async overwritingSecrets(db, fn) {
      const result = await fn();
      // An UPDATE leaves the old row version in the table until VACUUM reclaims it. VACUUM
      // needs the table's owner; a user without that right leaves it to autovacuum.
      await sql`vacuum webhook_endpoints`.execute(db).catch(() => undefined);
      return result;
    },
  };
}
