import type { DatabaseFailure } from '../adapter.js';

/** Node socket errors when the database cannot be reached. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE']);

/**
 * What a `pg` error means to the store (see DatabaseFailure), by SQLSTATE
 * (https://www.postgresql.org/docs/current/errcodes-appendix.html).
 */
export function classifyPostgresError(error: unknown): DatabaseFailure | undefined {
  const code = (error as { code?: unknown }).code;
  const message = error instanceof Error ? error.message : String(error);
  if (typeof code !== 'string') {
    // pg's own errors when a connection is lost or cannot be had in time carry no code.
    if (/^(Connection terminated|timeout exceeded when trying to connect)/i.test(message)) return { kind: 'storage', message };
    return undefined;
  }
  if (UNREACHABLE.has(code)) return { kind: 'storage', message };
  if (code === '23505') return { kind: 'uniqueViolation' };
  // serialization_failure, deadlock_detected
  if (code === '40001' || code === '40P01') return { kind: 'serialization' };
  // too_many_connections, lock_not_available, cannot_connect_now
  if (code === '53300' || code === '55P03' || code === '57P03') return { kind: 'busy' };
  // Class 53 insufficient resources (disk full, out of memory), 58 system errors (I/O),
  // 08 connection exceptions, XX001/XX002 data corrupted, admin/crash shutdown, and a
  // read-only transaction on a standby the URL now points to.
  if (/^(53|58|08)/.test(code) || code === 'XX001' || code === 'XX002' || code === '57P01' || code === '57P02' || code === '25006') {
    return { kind: 'storage', message };
  }
  return undefined;
}
