import type { ColumnDefinitionBuilder, ColumnDataType, Dialect, Kysely, RawBuilder, SqlBool } from 'kysely';
import type { Channel, Notifications } from '../../domain/ports/notifications.js';
import type { Database } from '../schema.js';

/**
 * Everything that differs between the SQL databases we run on, as named capabilities (the
 * shape of Kysely's own DialectAdapter): repositories and migrations are written once in
 * portable SQL and ask the adapter only for what cannot be. One folder per dialect, one file
 * per role (connection, errors, adapter).
 */
export interface StoreAdapter {
  readonly name: 'sqlite' | 'postgres';
  /** Where the database is, for messages: a file path, or a URL without its password. */
  readonly display: string;
  /** The Kysely dialect; every connection it opens goes through `guardConnection` (guard.ts). */
  readonly dialect: Dialect;
  readonly migration: MigrationDialect;
  /**
   * Bound parameters one statement may carry. Multi-row writes are cut into chunks that
   * stay below it (SQLite allows 32,766; PostgreSQL's protocol 65,535).
   */
  readonly maxParameters: number;
  /**
   * Runs `fn` in a transaction holding the lock schema migrations hold, so that it runs in
   * one process at a time even when several start at once.
   */
  withMigrationLock<T>(db: Kysely<Database>, fn: (trx: Kysely<Database>) => Promise<T>): Promise<T>;
  /**
   * Runs `fn`, which overwrites secrets (in transactions of its own), so that no copy of the
   * overwritten values stays readable in the database's files afterwards as far as the
   * engine allows. Not to be called inside a transaction.
   */
  overwritingSecrets<T>(db: Kysely<Database>, fn: () => Promise<T>): Promise<T>;
  /**
   * Whether several server processes may share the database (PostgreSQL). SQLite: one server
   * process per file (CLI commands beside it are fine).
   */
  readonly multiInstance: boolean;
  /**
   * Whether `for update`, `for share` and `skip locked` exist. Without them (SQLite) every
   * transaction holds the whole database's write lock from its start, which is stronger.
   */
  readonly rowLocks: boolean;
  /**
   * The database's clock, epoch ms, as an SQL expression: leases are compared with one
   * clock, whatever the clocks of the hosts that hold them say.
   */
  readonly now: RawBuilder<number>;
  /** Wake-ups between the processes on this database (see ports/notifications.ts). */
  readonly notifications: Notifications;
  /**
   * Sends a notification when `trx` commits (and not at all if it rolls back): what another
   * process caches is invalidated exactly when the change becomes visible.
   */
  notifyWithin(trx: Kysely<Database>, channel: Channel, payload: string): Promise<void>;
  /**
   * `(columns) in keys`: rows by a list of composite keys (each key one value per column, in
   * order), for lookups through a primary key. PostgreSQL plans a long list of row values as
   * one OR branch each (500 keys of three columns: about 50 ms, ten times the lookups); there
   * the keys go as one array per column, unnested and joined through the index.
   */
  keysIn(columns: readonly KeyColumn[], keys: readonly (readonly (string | number)[])[]): RawBuilder<SqlBool>;
}

/** A column of a composite key, with the SQL type its values are sent as. */
export interface KeyColumn {
  name: string;
  type: 'text' | 'bigint';
}

/** The driver errors the store translates, whatever the database says them with. */
export type DatabaseFailure =
  /** A unique or primary key constraint refused the write: a concurrent request won a race. */
  | { kind: 'uniqueViolation' }
  /** A transaction lost to a concurrent one (serialization failure, deadlock): try it again. */
  | { kind: 'serialization' }
  /** The database stayed locked, or out of connections, for longer than we wait. */
  | { kind: 'busy' }
  /** The storage, not the statement, is failing: disk full, I/O error, database unreachable. */
  | { kind: 'storage'; message: string };

/** What migrations need to know of the dialect: how to declare an auto-incrementing key. */
export interface MigrationDialect {
  readonly autoIncrementType: ColumnDataType;
  autoIncrement(column: ColumnDefinitionBuilder): ColumnDefinitionBuilder;
}
