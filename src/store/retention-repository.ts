import type { Kysely } from 'kysely';
import type { RetentionStore } from '../domain/retention.js';
import { pruneHistoryBefore } from './rule-history-repository.js';
import { pruneSilencesBefore } from './silences-repository.js';
import type { Database } from './schema.js';

const FINISHED = ['delivered', 'failed', 'cancelled'];

/**
 * Deletes old webhook deliveries, their attempts and alert events, one small transaction per
 * call, through the indexes of migration 0006; old rule history (index on `at`, 0011); and
 * silences that ended before the history cut-off (0013).
 */
export function createRetentionRepository(db: Kysely<Database>): RetentionStore {
  return {
    pruneFinishedDeliveries(beforeIso, limit) {
      return db.transaction().execute(async (trx) => {
        const candidates = await trx
          .selectFrom('webhook_deliveries')
          .select('id')
          .where('created_at', '<', beforeIso)
          .where('updated_at', '<', beforeIso)
          .where('status', 'in', FINISHED)
          // No ORDER BY: every row found is past the cut-off, and (status, created_at) serves
          // each status as a range that stops at `limit` rows, with nothing to sort.
          .limit(limit)
          .execute();
        if (candidates.length === 0) return { deliveries: 0, attempts: 0 };
        // The status is checked again where it is deleted: a delivery retried meanwhile stays.
        const deleted = await trx
          .deleteFrom('webhook_deliveries')
          .where(
            'id',
            'in',
            candidates.map((c) => c.id),
          )
          .where('status', 'in', FINISHED)
          .returning('id')
          .execute();
        if (deleted.length === 0) return { deliveries: 0, attempts: 0 };
        const attempts = await trx
          .deleteFrom('webhook_attempts')
          .where(
            'delivery_id',
            'in',
            deleted.map((d) => d.id),
          )
          .executeTakeFirst();
        return { deliveries: deleted.length, attempts: Number(attempts.numDeletedRows) };
      });
    },

    async pruneUnreferencedEvents(beforeIso, limit) {
      const result = await db
        .deleteFrom('alert_events')
        .where('id', 'in', (eb) =>
          eb
            .selectFrom('alert_events as ev')
            .select('ev.id')
            .where('ev.created_at', '<', beforeIso)
            .where(({ not, exists, selectFrom }) =>
              not(exists(selectFrom('webhook_deliveries as d').select('d.id').whereRef('d.event_id', '=', 'ev.id'))),
            )
            .orderBy('ev.created_at')
            .limit(limit),
        )
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },

    pruneHistory: (beforeIso, limit) => pruneHistoryBefore(db, beforeIso, limit),

    // No index leads with ends_at (0013 has (account_id, ends_at)): a scan, of a small table:
    // at most 100 silences per account that have not ended, and those ended within the retention.
    pruneSilences: (beforeIso, limit) => pruneSilencesBefore(db, beforeIso, limit),
  };
}
