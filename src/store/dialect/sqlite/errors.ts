import type { DatabaseFailure } from '../adapter.js';

/** SQLite result codes that say the storage is failing, not the statement. */
const STORAGE_FAILURE_CODE = /^SQLITE_(FULL|IOERR|READONLY|CORRUPT|NOTADB|CANTOPEN)/;

/** What a better-sqlite3 error means to the store (see DatabaseFailure). */
export function classifySqliteError(error: unknown): DatabaseFailure | undefined {
  const code = (error as { code?: unknown }).code;
  if (typeof code !== 'string') return undefined;
  if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') return { kind: 'uniqueViolation' };
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return { kind: 'busy' };
  if (STORAGE_FAILURE_CODE.test(code)) return { kind: 'storage', message: (error as Error).message };
  return undefined;
}
