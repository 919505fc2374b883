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
export function createPostgresPool(url: string, poolSize: number, onIdleError: (error: Error) => void): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    types,
    application_name: 'alerts',
    // A database out of reach answers the request with a 503 in bounded time.
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
  });
  // An idle connection that the server closes (restart, failover) emits here; without a
  // listener that would end the process. The next query opens a new connection.
  pool.on('error', onIdleError);
  return pool;
}
