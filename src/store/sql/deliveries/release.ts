import { sql, type Kysely } from 'kysely';
import { CHANNELS } from '../../../domain/ports/notifications.js';
import type { Database } from '../../schema.js';
import type { QueueCapabilities } from './claims.js';

/** Ids per statement: well below every database's parameter limit. */
const IDS_PER_STATEMENT = 500;

/**
 * Puts deliveries claimed by `owner` back as due now, giving back the attempt their claim
 * counted (none was made, or it was aborted before any answer). Only claims still `owner`'s
 * are touched: one reaped meanwhile (and perhaps claimed again by another instance) keeps
 * its newer state. Wakes every instance when the transaction commits.
 */
export async function release(
  db: Kysely<Database>,
  capabilities: QueueCapabilities,
  owner: string,
  ids: readonly string[],
  now: number,
  nowIso: string,
): Promise<number> {
  if (ids.length === 0) return 0;
  return db.transaction().execute(async (trx) => {
    let released = 0;
    for (let i = 0; i < ids.length; i += IDS_PER_STATEMENT) {
      const result = await trx
        .updateTable('webhook_deliveries')
        .set((eb) => ({
          status: 'pending',
          attempts: sql<number>`case when ${eb.ref('attempts')} > 0 then ${eb.ref('attempts')} - 1 else 0 end`,
          next_attempt_at: now,
          locked_until: null,
          locked_by: null,
          updated_at: nowIso,
        }))
        .where('id', 'in', ids.slice(i, i + IDS_PER_STATEMENT))
        .where('status', '=', 'in_flight')
        .where('locked_by', '=', owner)
        .executeTakeFirst();
      released += Number(result.numUpdatedRows);
    }
    if (released > 0) await capabilities.notifyWithin(trx, CHANNELS.deliveries, '');
    return released;
  });
}
