import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Kysely, sql } from 'kysely';
import pg from 'pg';
import { parseDatabaseUrl, type DatabaseLocation } from '../../src/config.js';
import { createAdapter } from '../../src/store/dialect/index.js';
import type { Database } from '../../src/store/schema.js';

/**
 * One test suite, two databases. Unset (the default), every test gets a fresh SQLite file
 * in its own temporary directory. `TEST_DATABASE_URL=postgres://...` (`npm run
 * test:postgres`) runs the same tests on PostgreSQL: each test directory is given its own
 * schema in that database, named after the directory, so a test that restarts the service
 * on the same directory finds its data again, and tests in parallel never see each other's.
 */
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL?.trim() || undefined;
export const onPostgres = TEST_DATABASE_URL !== undefined;
/** Which database the suite runs on, for test names and skip reasons. */
export const testDatabaseKind: 'sqlite' | 'postgres' = onPostgres ? 'postgres' : 'sqlite';

/** Schemas of this run start with this; global teardown drops them. */
export const TEST_SCHEMA_PREFIX_ENV = 'ALERTS_TEST_SCHEMA_PREFIX';
const schemaPrefix = () => process.env[TEST_SCHEMA_PREFIX_ENV] ?? `t${process.pid}_`;

let admin: pg.Pool | undefined;
function adminPool(): pg.Pool {
  admin ??= new pg.Pool({ connectionString: TEST_DATABASE_URL, max: 2 });
  return admin;
}

/** The schema a test directory's database lives in (PostgreSQL). */
export function schemaFor(dir: string): string {
  return `${schemaPrefix()}${createHash('sha256').update(dir).digest('hex').slice(0, 16)}`;
}

/**
 * `base` with the connection's search_path set to `schema` (pg reads libpq's `options`).
 * Test connections also commit without waiting for PostgreSQL's disk flush: the tests kill
 * our processes, never PostgreSQL, so every commit is still there for them, and a run takes
 * far less time on a slow disk.
 */
export function withSearchPath(base: string, schema: string): string {
  const url = new URL(base);
  url.searchParams.set('options', `-c search_path=${schema} -c synchronous_commit=off`);
  return url.toString();
}

/**
 * The DATABASE_URL of the test directory `dir`: its alerts.db file on SQLite, or its own
 * schema on PostgreSQL (created if missing).
 */
export async function databaseUrlFor(dir: string): Promise<string> {
  if (!onPostgres) return join(dir, 'alerts.db');
  const schema = schemaFor(dir);
  await adminPool().query(`create schema if not exists "${schema}"`);
  return withSearchPath(TEST_DATABASE_URL!, schema);
}

/** Removes the database of a test directory (the directory itself is the caller's). */
export async function dropDatabaseFor(dir: string): Promise<void> {
  if (!onPostgres) return;
  await adminPool().query(`drop schema if exists "${schemaFor(dir)}" cascade`);
}

/** A fresh, empty PostgreSQL schema URL (or SQLite file in `dir`) not tied to a directory name. */
export async function freshDatabaseUrl(dir: string): Promise<string> {
  return databaseUrlFor(onPostgres ? join(dir, randomBytes(6).toString('hex')) : dir);
}

/** The location a DATABASE_URL names, as the service reads it. */
export function locationOf(url: string): DatabaseLocation {
  return parseDatabaseUrl(url, process.cwd());
}

/**
 * Opens a database the way the store does, without migrating, for tests that look at rows
 * directly (through Kysely, whichever the database). Close it with `destroy()`.
 */
export function inspectDatabase(url: string): Kysely<Database> {
  return new Kysely<Database>({ dialect: createAdapter(locationOf(url), { failure: undefined }).dialect });
}

/** Drops every schema this run created (global teardown). */
export async function dropRunSchemas(prefix: string): Promise<void> {
  if (!onPostgres) return;
  const pool = new pg.Pool({ connectionString: TEST_DATABASE_URL, max: 1 });
  try {
    const { rows } = await pool.query<{ nspname: string }>('select nspname from pg_namespace where starts_with(nspname, $1)', [prefix]);
    for (const { nspname } of rows) await pool.query(`drop schema if exists "${nspname}" cascade`);
  } finally {
    await pool.end();
  }
}

/**
 * Every row of every table of the database the test uses (on PostgreSQL, of its own schema
 * only: others run beside it), rows as JSON text, sorted (PostgreSQL returns rows in storage
 * order, which any update may change), tables by name.
 */
export async function tableRows(db: Kysely<Database>): Promise<Record<string, string[]>> {
  // The catalog's table names, not Kysely's introspection: that reads every column of every
  // schema, which made a snapshot per request the slowest part of the generative tests on PostgreSQL.
  const names = onPostgres
    ? sql<{ name: string }>`select table_name as name from information_schema.tables where table_schema = current_schema() and table_type = 'BASE TABLE'`
    : sql<{ name: string }>`select name from sqlite_master where type = 'table' and name not like 'sqlite_%'`;
  // Kysely's migration bookkeeping is left out, as its introspection leaves it out.
  const tables = (await names.execute(db)).rows.map((r) => r.name).filter((name) => !name.startsWith('kysely_')).sort();
  const rows: Record<string, string[]> = {};
  for (const name of tables) {
    rows[name] = (await sql`select * from ${sql.table(name)}`.execute(db)).rows.map((row) => JSON.stringify(row)).sort();
  }
  return rows;
}
