import { existsSync, linkSync, rmSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { ConfigError, type DatabaseLocation } from '../config.js';

export interface BackupResult {
  source: string;
  destination: string;
  bytes: number;
}

const reasonOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

/**
 * Writes a consistent copy of the database to `destination` with SQLite's online backup,
 * safe while the server runs and writes: the copy is one snapshot, including what is still
 * in the `-wal` file (which a plain `cp` of the database file would miss). The copy is
 * written beside the destination under a temporary name, checked (`quick_check`), and only
 * then given its name; an existing file is never overwritten.
 */
export async function backupDatabase(location: DatabaseLocation, destination: string, cwd: string = process.cwd()): Promise<BackupResult> {
  if (location.kind !== 'sqlite') {
    throw new ConfigError(`DATABASE_URL=${location.display}: alerts backup copies a SQLite file; back up PostgreSQL with its own tools (pg_dump, or your provider's snapshots)`);
  }
  const source = location.path;
  if (source === ':memory:') throw new ConfigError('DATABASE_URL=:memory: is not a file; there is nothing to back up');
  const target = resolve(cwd, destination);
  if (target === source) throw new Error(`the backup file ${target} is the database itself; choose another file`);
  if (existsSync(target)) throw new Error(`${target} already exists; choose a new file name (a backup never overwrites a file)`);
  if (!existsSync(dirname(target)) || !statSync(dirname(target)).isDirectory()) throw new Error(`the folder ${dirname(target)} does not exist`);
  if (!existsSync(source)) throw new ConfigError(`DATABASE_URL=${source}: no database file there`);

  let db: BetterSqlite3.Database;
  try {
    db = new BetterSqlite3(source, { readonly: true, fileMustExist: true });
    db.pragma('busy_timeout = 5000');
  } catch (error) {
    throw new ConfigError(`DATABASE_URL=${source}: cannot open the database file ${source}: ${reasonOf(error)}`);
  }
  const partial = `${target}.partial-${process.pid}`;
  try {
    // Every page in one step: one read snapshot, so writes of the running server cannot
    // make the backup start over (it would, between steps).
    await db.backup(partial, { progress: () => 0x7fffffff });
    const copy = new BetterSqlite3(partial, { fileMustExist: true });
    try {
      const check = copy.pragma('quick_check', { simple: true });
      if (check !== 'ok') throw new Error(`the copy failed its integrity check: ${String(check)}`);
    } finally {
      copy.close();
    }
    // A hard link, not a rename: it fails instead of replacing a file made meanwhile.
    linkSync(partial, target);
    return { source, destination: target, bytes: statSync(target).size };
  } finally {
    db.close();
    for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(partial + suffix, { force: true });
  }
}
