import { sql, type Transaction } from 'kysely';
import type { Database } from '../../schema.js';

/**
 * Cancels the unfinished deliveries of an endpoint that will not send them (same transaction
 * as the change that says so): deleted (`why`: 'endpoint deleted') or disabled by the service.
 * One in flight is cancelled too (its attempt is aborted, and not counted): should it still
 * complete, recordAttempt leaves a cancelled delivery cancelled, so it is never rescheduled.
 */
export async function cancelPendingDeliveries(trx: Transaction<Database>, endpointId: string, nowIso: string, why = 'endpoint deleted'): Promise<void> {
  await trx
    .updateTable('webhook_deliveries')
    .set((eb) => ({
      status: 'cancelled',
      // An attempt in flight is aborted with its endpoint: its claim's count is given back.
      attempts: eb
        .case()
        .when('status', '=', 'in_flight')
        .then(sql<number>`case when ${eb.ref('attempts')} > 0 then ${eb.ref('attempts')} - 1 else 0 end`)
        .else(eb.ref('attempts'))
        .end(),
      next_attempt_at: null,
      locked_until: null,
      locked_by: null,
      updated_at: nowIso,
      last_error: why,
    }))
    .where('endpoint_id', '=', endpointId)
    .where('status', 'in', ['pending', 'in_flight'])
    .execute();
}
