import { SqliteDialect, sql, type SqlBool } from 'kysely';
import { createLocalNotifications } from '../local-notifications.js';
import type { StoreAdapter } from '../adapter.js';
import { guardConnection, type WriteHealth } from '../guard.js';
import { openSqliteFile, withStatementCache } from './connection.js';
import { classifySqliteError } from './errors.js';

/** The database's clock, epoch ms. */
export const SQLITE_NOW = sql<number>`cast(unixepoch('subsec') * 1000 as integer)`;

/** The embedded database: one file, one connection (better-sqlite3 is synchronous). */
export function createSqliteAdapter(path: string, health: WriteHealth): StoreAdapter {
  const database = withStatementCache(openSqliteFile(path));
  const notifications = createLocalNotifications();
  return {
    multiInstance: false,
    rowLocks: false,
    now: SQLITE_NOW,
    notifications,
    // One server process: it invalidates its own caches and wakes its own engine and worker
    // where it writes, so a notification from a transaction would tell it nothing new (and a
    // value flush's would empty its rule cache every second).
    notifyWithin: async () => {},
    // Row values (SQLite 3.15+): each key a (?, ?, ?) of the list.
    keysIn: (columns, keys) =>
      sql<SqlBool>`(${sql.join(columns.map((c) => sql.ref(c.name)))}) in (${sql.join(keys.map((key) => sql`(${sql.join(key)})`))})`,
    name: 'sqlite',
    display: path,
    dialect: new SqliteDialect({
      database,
      onCreateConnection: async (connection) => guardConnection(connection, classifySqliteError, health),
    }),
    migration: {
      autoIncrementType: 'integer',
      autoIncrement: (column) => column.primaryKey().autoIncrement(),
    },
    // SQLITE_MAX_VARIABLE_NUMBER of the SQLite that better-sqlite3 bundles.
    maxParameters: 32_766,
    // Every transaction begins with the file's write lock (`begin immediate`, connection.ts):
    // one process at a time, the others wait for it (busy_timeout).
    withMigrationLock: (db, fn) => db.transaction().execute(fn),
    async overwritingSecrets(db, fn) {
      // SQLite leaves the bytes of an overwritten value in the page's free space, and the
      // old page in the WAL: zero freed space while overwriting, then fold the WAL into the
      // main file and truncate it.
      const previous = (await sql<{ secure_delete: number }>`pragma secure_delete`.execute(db)).rows[0]?.secure_delete ?? 0;
      await sql`pragma secure_delete = on`.execute(db);
      try {
        return await fn();
      } finally {
        await sql.raw(`pragma secure_delete = ${previous === 1 ? 'on' : 'off'}`).execute(db);
        await sql`pragma wal_checkpoint(TRUNCATE)`.execute(db);
      }
    },
  };
}
