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

export interface BatchRecord {
  accountId: string;
  receivedAt: number;
  deltas: string;
  projects: readonly string[];
}

export interface TelemetryRepository {
  /** Stores batches' deltas and marks their scopes as seen, all in one transaction. */
  record(batches: readonly BatchRecord[]): Promise<void>;
  /** Batches received after the time, in order, `limit` at a time after sequence `afterSeq`. */
  batchesSince(receivedAfter: number, afterSeq: number, limit: number): Promise<StoredBatch[]>;
  scopesSeenSince(seenAfter: number): Promise<StoredScope[]>;
  /** Deletes batches received before the time; returns how many. */
  pruneBefore(receivedBefore: number): Promise<number>;
}

export function createTelemetryRepository(db: Kysely<Database>): TelemetryRepository {
  return {
    async record(batches) {
      if (batches.length === 0) return;
      // Several requests' batches share one commit (one fsync) when they arrive together.
      const seen = new Map<string, { account_id: string; project_key: string; last_seen_at: number }>();
      for (const b of batches) {
        for (const project_key of ['', ...b.projects]) {
          const key = `${b.accountId}\u0000${project_key}`;
          const last = seen.get(key);
          if (!last || last.last_seen_at < b.receivedAt) seen.set(key, { account_id: b.accountId, project_key, last_seen_at: b.receivedAt });
        }
      }
      await db.transaction().execute(async (trx) => {
        await trx
          .insertInto('telemetry_batches')
          .values(batches.map((b) => ({ account_id: b.accountId, received_at: b.receivedAt, deltas: b.deltas })))
          .execute();
        const scopes = [...seen.values()];
        // Parameters per statement stay well below SQLite's limit.
        for (let i = 0; i < scopes.length; i += 300) {
          await trx
            .insertInto('telemetry_scopes')
            .values(scopes.slice(i, i + 300))
            .onConflict((oc) =>
              oc.columns(['account_id', 'project_key']).doUpdateSet((eb) => ({ last_seen_at: eb.ref('excluded.last_seen_at') })),
            )
            .execute();
        }
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
