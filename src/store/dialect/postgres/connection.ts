import pg from 'pg';

/** PostgreSQL type OIDs whose text form we parse ourselves. */
const INT8_OID = 20;

/**
 * `bigint` columns (epoch milliseconds, sequence numbers, counts) come back from `pg` as
 * strings, to be safe beyond 2^53. Ours never get there (epoch ms reach 2^53 in the year
 * 287,396), so they are parsed to numbers, and a value that could not be held exactly is an
 * error rather than a silently rounded number.
 */
function parseInt8(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new RangeError(`the database returned the integer ${text}, beyond what JavaScript holds exactly`);
  return value;
}

const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary' ? parseInt8 : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/**
 * The connection pool of one store. Parsers are the pool's own (not pg's global ones), so a
 * process may hold other pools with other rules. `url` carries everything libpq-style
 * (`sslmode`, `options=-c search_path=...`).
 */
export function createPostgresPool(url: string, poolSize: number, stalledTransactionTimeoutMs: number, onIdleError: (error: Error) => void): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    types,
    application_name: 'alerts',
    // A database out of reach answers the request with a 503 in bounded time.
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    // Row locks outlive a process only while its session does. A process frozen inside a
    // transaction (SIGSTOP, a paused VM) holds `for share` on its shard leases (checkFence), and
    // a takeover skips locked rows: without this the shard would have no working owner until
    // the frozen process woke up. The server ends such a session and rolls its transaction
    // back; the frozen process, once awake, finds its connection gone and its write undone.
    idle_in_transaction_session_timeout: stalledTransactionTimeoutMs,
  });
  // An idle connection that the server closes (restart, failover) emits here; without a
  // listener that would end the process. The next query opens a new connection.
  pool.on('error', onIdleError);
  // A connection in use may be ended by the server too (the stalled-transaction timeout above,
  // an administrator's pg_terminate_backend): its query fails, the pool drops it on release,
  // and the error it also emits must not end the process.
  pool.on('connect', (client) => client.on('error', onIdleError));
  return pool;
}
