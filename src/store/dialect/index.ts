import type { RawBuilder } from 'kysely';
import type { DatabaseLocation } from '../../config.js';
import type { StoreAdapter } from './adapter.js';
import type { WriteHealth } from './guard.js';
import { createPostgresAdapter, POSTGRES_NOW } from './postgres/adapter.js';
import { createSqliteAdapter, SQLITE_NOW } from './sqlite/adapter.js';

export type { StoreAdapter, DatabaseFailure, MigrationDialect } from './adapter.js';
export type { WriteHealth } from './guard.js';

/** How long PostgreSQL lets a session of ours sit idle inside a transaction (ms). */
export const DEFAULT_STALLED_TRANSACTION_TIMEOUT_MS = 10_000;

/** The adapter for where DATABASE_URL points. */
export function createAdapter(
  location: DatabaseLocation,
  health: WriteHealth,
  hooks: {
    onIdleError?: ((error: Error) => void) | undefined;
    onNotificationsError?: ((error: Error) => void) | undefined;
    /** See OpenStoreOptions.stalledTransactionTimeoutMs (PostgreSQL only). */
    stalledTransactionTimeoutMs?: number | undefined;
  } = {},
): StoreAdapter {
  switch (location.kind) {
    case 'sqlite':
      return createSqliteAdapter(location.path, health);
    case 'postgres':
      return createPostgresAdapter({
        url: location.url,
        display: location.display,
        poolSize: location.poolSize,
        health,
        onIdleError: hooks.onIdleError ?? (() => {}),
        onNotificationsError: hooks.onNotificationsError ?? (() => {}),
        stalledTransactionTimeoutMs: hooks.stalledTransactionTimeoutMs ?? DEFAULT_STALLED_TRANSACTION_TIMEOUT_MS,
      });
  }
}

/** The database's clock (epoch ms) as an SQL expression, for code that has a dialect name but no adapter. */
export function databaseClock(kind: StoreAdapter['name']): RawBuilder<number> {
  return kind === 'postgres' ? POSTGRES_NOW : SQLITE_NOW;
}
