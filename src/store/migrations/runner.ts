import { sql, type Kysely, type Migration } from 'kysely';
import { AppError } from '../../domain/errors.js';
import type { StoreAdapter } from '../dialect/index.js';
import type { Database } from '../schema.js';

export class MigrationError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'MigrationError';
  }
}

const reasonOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

/**
 * The names of the migrations applied to the database, from the bookkeeping table (the one
 * Kysely's migrator kept, so databases it migrated read as they are); empty for a new one.
 */
async function appliedMigrations(db: Kysely<Database>): Promise<Set<string>> {
  try {
    const { rows } = await sql<{ name: string }>`select name from kysely_migration`.execute(db);
    return new Set(rows.map((row) => row.name));
  } catch {
    return new Set();
  }
}

/** Migrations of `migrations` not applied yet, in the order they must run. */
export async function pendingMigrations(db: Kysely<Database>, migrations: Record<string, Migration>): Promise<string[]> {
  const applied = await appliedMigrations(db);
  return Object.keys(migrations)
    .sort()
    .filter((name) => !applied.has(name));
}

/**
 * Applies the pending migrations in one transaction that holds the migration lock (see
 * StoreAdapter.withMigrationLock): processes that start at once migrate one after the other,
 * the later ones finding nothing left to do, and a migration that fails leaves the schema as
 * it was (both databases run DDL in transactions). Returns the names applied, in order.
 *
 * Our own runner rather than Kysely's Migrator: on PostgreSQL that one lists every table of
 * every schema of the database to learn whether its bookkeeping table exists, which costs
 * more the more the database holds and fails when another schema is dropped meanwhile.
 */
export async function runMigrations(db: Kysely<Database>, adapter: StoreAdapter, migrations: Record<string, Migration>): Promise<string[]> {
  const names = Object.keys(migrations).sort();
  // The usual case, a schema already current, costs one query and takes no lock.
  if ((await pendingMigrations(db, migrations)).length === 0) return [];
  return adapter.withMigrationLock(db, async (trx) => {
    await sql`create table if not exists kysely_migration (name varchar(255) not null primary key, timestamp varchar(255) not null)`.execute(trx);
    const applied = await appliedMigrations(trx);
    const unknown = [...applied].filter((name) => !names.includes(name));
    if (unknown.length > 0) {
      throw new MigrationError(
        `DATABASE_URL=${adapter.display}: the database schema is newer than this version of alerts (it has ${unknown.join(', ')}); run the newer version`,
      );
    }
    const done: string[] = [];
    for (const name of names) {
      if (applied.has(name)) continue;
      try {
        await migrations[name]!.up(trx as unknown as Kysely<unknown>);
      } catch (error) {
        // The words of the database itself (a read-only file, a full disk) say what to fix.
        const root = error instanceof AppError && error.cause !== undefined ? error.cause : error;
        throw new MigrationError(`DATABASE_URL=${adapter.display}: database migration ${name} failed: ${reasonOf(root)}`, { cause: error });
      }
      await sql`insert into kysely_migration (name, timestamp) values (${name}, ${new Date().toISOString()})`.execute(trx);
      done.push(name);
    }
    return done;
  });
}
