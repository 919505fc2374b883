import type { Kysely } from 'kysely';
import type { Database } from './schema.js';

export interface StoredBatch {
  seq: number;
  account_id: string;
  received_at: number;
  deltas: string;
}

export interface StoredScope {
  account_id: string;
  /** The project id, or '' for the account as a whole. */
  project_key: string;
  last_seen_at: number;
}

export interface TelemetryRepository {
  /** Stores a batch's deltas and marks its scopes as seen, in one transaction. */
  record(accountId: string, receivedAt: number, deltas: string, projects: readonly string[]): Promise<void>;
  /** Batches received after the time, in order, `limit` at a time after sequence `afterSeq`. */
  batchesSince(receivedAfter: number, afterSeq: number, limit: number): Promise<StoredBatch[]>;
  scopesSeenSince(seenAfter: number): Promise<StoredScope[]>;
  /** Deletes batches received before the time; returns how many. */
  pruneBefore(receivedBefore: number): Promise<number>;
}

export function createTelemetryRepository(db: Kysely<Database>): TelemetryRepository {
  return {
    record(accountId, receivedAt, deltas, projects) {
      return db.transaction().execute(async (trx) => {
        await trx.insertInto('telemetry_batches').values({ account_id: accountId, received_at: receivedAt, deltas }).execute();
        await trx
          .insertInto('telemetry_scopes')
          .values(['', ...projects].map((project_key) => ({ account_id: accountId, project_key, last_seen_at: receivedAt })))
          .onConflict((oc) =>
            oc.columns(['account_id', 'project_key']).doUpdateSet((eb) => ({ last_seen_at: eb.ref('excluded.last_seen_at') })),
          )
          .execute();
      });
    },
    batchesSince: (receivedAfter, afterSeq, limit) =>
      db
        .selectFrom('telemetry_batches')
        .select(['seq', 'account_id', 'received_at', 'deltas'])
        .where('received_at', '>', receivedAfter)
        .where('seq', '>', afterSeq)
        .orderBy('seq')
        .limit(limit)
        .execute(),
    scopesSeenSince: (seenAfter) =>
      db.selectFrom('telemetry_scopes').selectAll().where('last_seen_at', '>', seenAfter).execute(),
    async pruneBefore(receivedBefore) {
      const result = await db.deleteFrom('telemetry_batches').where('received_at', '<', receivedBefore).executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}
