import { accessSync, constants, existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import type { SqliteDatabase, SqliteStatement } from 'kysely';
import { ConfigError } from '../../../config.js';

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

/** Opens (creating it and its folder if need be) the database file, durable and in WAL mode. */
export function openSqliteFile(path: string): BetterSqlite3.Database {
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

/**
 * A ROLLBACK when no transaction is active does nothing. SQLite rolls a transaction back by
 * itself on some errors (SQLITE_FULL among them); Kysely then still sends ROLLBACK, and
 * its "cannot rollback - no transaction is active" would replace the error that mattered.
 */
function tolerantStatement(sqlite: BetterSqlite3.Database, statement: BetterSqlite3.Statement, text: string): SqliteStatement {
  const isRollback = /^\s*rollback\s*$/i.test(text);
  return {
    reader: statement.reader,
    all: (parameters) => statement.all(parameters as unknown[]),
    run(parameters) {
      if (isRollback && !sqlite.inTransaction) return { changes: 0, lastInsertRowid: 0 };
      return statement.run(parameters as unknown[]);
    },
    iterate: (parameters) => statement.iterate(parameters as unknown[]),
  };
}

/**
 * Kysely prepares every query anew; preparing costs more than running our small indexed
 * queries, so statements are kept by SQL text (the set of distinct queries is small).
 */
export function withStatementCache(sqlite: BetterSqlite3.Database): SqliteDatabase {
  const statements = new Map<string, SqliteStatement>();
  return {
    close: () => sqlite.close(),
    prepare(text: string) {
      let statement = statements.get(text);
      if (statement === undefined) {
        // Every transaction takes the write lock when it begins (our transactions write):
        // a deferred one that reads first and then writes fails at once with SQLITE_BUSY when
        // another process wrote meanwhile, instead of waiting for the lock (busy_timeout).
        const sqlText = /^\s*begin\s*$/i.test(text) ? 'begin immediate' : text;
        statement = tolerantStatement(sqlite, sqlite.prepare(sqlText), text);
        if (statements.size >= STATEMENT_CACHE_SIZE) statements.delete(statements.keys().next().value!);
        statements.set(text, statement);
      }
      return statement;
    },
  };
}
