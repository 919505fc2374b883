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
  /**
   * Stores batches' deltas and marks their scopes as seen, all in one transaction; returns
   * the sequence number given to each batch, in the order of `batches`.
   */
  record(batches: readonly BatchRecord[]): Promise<number[]>;
  /** Batches received after the time, in order, `limit` at a time after sequence `afterSeq`. */
  batchesSince(receivedAfter: number, afterSeq: number, limit: number): Promise<StoredBatch[]>;
  /** One account's batches received after the time with afterSeq < seq <= throughSeq, in order, `limit` at a time. */
  accountBatchesSince(accountId: string, receivedAfter: number, afterSeq: number, throughSeq: number, limit: number): Promise<StoredBatch[]>;
  /** The account-wide scopes (project_key '') seen after the time. */
  accountsSeenSince(seenAfter: number): Promise<StoredScope[]>;
  /** The rows of the given scopes that exist: when each was last seen. */
  lastSeen(scopes: readonly Pick<StoredScope, 'account_id' | 'project_key'>[]): Promise<StoredScope[]>;
  /** Deletes batches received before the time; returns how many. */
  pruneBefore(receivedBefore: number): Promise<number>;
}

export function createTelemetryRepository(db: Kysely<Database>): TelemetryRepository {
  return {
    async record(batches) {
      if (batches.length === 0) return [];
      // Several requests' batches share one commit (one fsync) when they arrive together.
      const seen = new Map<string, { account_id: string; project_key: string; last_seen_at: number }>();
      for (const b of batches) {
        for (const project_key of ['', ...b.projects]) {
          const key = `${b.accountId}\u0000${project_key}`;
          const last = seen.get(key);
          if (!last || last.last_seen_at < b.receivedAt) seen.set(key, { account_id: b.accountId, project_key, last_seen_at: b.receivedAt });
        }
      }
      return db.transaction().execute(async (trx) => {
        const inserted = await trx
          .insertInto('telemetry_batches')
          .values(batches.map((b) => ({ account_id: b.accountId, received_at: b.receivedAt, deltas: b.deltas })))
          .returning('seq')
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
        // Rows are inserted in the order given, each with a higher seq than the one before.
        return inserted.map((row) => row.seq).sort((a, b) => a - b);
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
    accountBatchesSince: (accountId, receivedAfter, afterSeq, throughSeq, limit) =>
      db
        .selectFrom('telemetry_batches')
        .select(['seq', 'account_id', 'received_at', 'deltas'])
        .where('account_id', '=', accountId)
        .where('seq', '>', afterSeq)
        .where('seq', '<=', throughSeq)
        .where('received_at', '>', receivedAfter)
        .orderBy('seq')
        .limit(limit)
        .execute(),
    accountsSeenSince: (seenAfter) =>
      db.selectFrom('telemetry_scopes').selectAll().where('project_key', '=', '').where('last_seen_at', '>', seenAfter).execute(),
    async lastSeen(scopes) {
      const found: StoredScope[] = [];
      // Parameters per statement stay well below SQLite's limit; each pair is a primary key lookup.
      for (let i = 0; i < scopes.length; i += 300) {
        const chunk = scopes.slice(i, i + 300);
        found.push(
          ...(await db
            .selectFrom('telemetry_scopes')
            .selectAll()
            .where((eb) => eb.or(chunk.map((s) => eb.and([eb('account_id', '=', s.account_id), eb('project_key', '=', s.project_key)]))))
            .execute()),
        );
      }
      return found;
    },
    async pruneBefore(receivedBefore) {
      const result = await db.deleteFrom('telemetry_batches').where('received_at', '<', receivedBefore).executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}
