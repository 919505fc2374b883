import type { Kysely } from 'kysely';
import type { TelemetryRollupRepository } from '../domain/ports/telemetry-rollup-repository.js';
import type { StoreAdapter } from './dialect/index.js';
import type { Database } from './schema.js';
import { fold } from './sql/rollups/fold.js';
import { progress } from './sql/rollups/progress.js';
import { prune } from './sql/rollups/prune.js';
import { unrolled } from './sql/rollups/unrolled.js';

/** The roll-up tables (migration 0011): one statement or transaction per file in sql/rollups/. */
export function createTelemetryRollupRepository(db: Kysely<Database>, adapter: Pick<StoreAdapter, 'rowLocks' | 'maxParameters' | 'keysIn'>): TelemetryRollupRepository {
  return {
    progress: () => progress(db),
    unrolled: (shard, afterSeq, limit) => unrolled(db, shard, afterSeq, limit),
    fold: (shard, fromSeq, throughSeq, rows) => fold(db, adapter, shard, fromSeq, throughSeq, rows),
    prune: (table, beforeSecond, limit) => prune(db, table, beforeSecond, limit),
  };
}
