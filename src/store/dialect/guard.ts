import type { CompiledQuery, DatabaseConnection } from 'kysely';
import { AppError } from '../../domain/errors.js';
import type { DatabaseFailure } from './adapter.js';

/** The last write that failed for a storage reason, until a write commits again. */
export interface WriteHealth {
  failure: { message: string; since: number } | undefined;
}

/**
 * The one place where database errors become errors of our registry: a lost race (unique
 * violation, serialization failure, deadlock) is a 409 the client may retry, never a 500; a
 * failing storage or a database out of reach is a 503. Anything else passes unchanged.
 */
export function translateDatabaseError(failure: DatabaseFailure | undefined, error: unknown): unknown {
  if (error instanceof AppError || failure === undefined) return error;
  switch (failure.kind) {
    case 'uniqueViolation':
    case 'serialization':
      return new AppError('conflict', 'a concurrent request changed the same data; try again', undefined, { cause: error });
    case 'busy':
      return new AppError('unavailable', 'the database is busy; try again later', undefined, { cause: error });
    case 'storage':
      return new AppError('unavailable', 'the service cannot store data right now; try again later', undefined, { cause: error });
  }
}

const BEGIN = /^\s*(begin|start\s+transaction)\b/i;
const END = /^\s*(commit|rollback)\s*$/i;
const COMMIT = /^\s*commit\s*$/i;
const WRITE = /^\s*(insert|update|delete|with)\b/i;

/**
 * Watches every statement of a connection (called once per connection as it is created): a
 * failed one is translated; a storage failure is recorded in `health`, and a committed write
 * (a COMMIT, or a write outside any transaction) clears the record.
 */
export function guardConnection(
  connection: DatabaseConnection,
  classify: (error: unknown) => DatabaseFailure | undefined,
  health: WriteHealth,
): void {
  const execute = connection.executeQuery.bind(connection);
  let inTransaction = false;
  connection.executeQuery = async <R>(query: CompiledQuery) => {
    const text = query.sql;
    try {
      const result = await execute<R>(query);
      if (health.failure !== undefined && (COMMIT.test(text) || (!inTransaction && WRITE.test(text)))) health.failure = undefined;
      return result;
    } catch (error) {
      const failure = classify(error);
      if (failure?.kind === 'storage') health.failure ??= { message: failure.message, since: Date.now() };
      throw translateDatabaseError(failure, error);
    } finally {
      if (BEGIN.test(text)) inTransaction = true;
      else if (END.test(text)) inTransaction = false;
    }
  };
}
