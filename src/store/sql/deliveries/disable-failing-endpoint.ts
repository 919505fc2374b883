import type { Kysely } from 'kysely';
import { notSentWhileDisabled } from '../../../domain/endpoint-health.js';
import type { Database } from '../../schema.js';
import { cancelPendingDeliveries } from './cancel-unfinished.js';

/**
 * Disables an endpoint that has failed since `failingSince` (see
 * DeliveriesRepository.disableFailingEndpoint), in one transaction: the endpoint only while it
 * is still enabled and still failing since exactly then, so of several workers that saw it
 * cross the limit one disables it, and an endpoint that succeeded meanwhile (its
 * failing_since cleared or moved) or was re-enabled stays as it is; then its unfinished
 * deliveries are cancelled, naming the reason. True when this call disabled it.
 */
export function disableFailingEndpoint(db: Kysely<Database>, endpointId: string, failingSince: number, reason: string, nowIso: string): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const result = await trx
      .updateTable('webhook_endpoints')
      .set({ enabled: 0, disabled_reason: reason, disabled_at: nowIso, updated_at: nowIso })
      .where('id', '=', endpointId)
      .where('enabled', '=', 1)
      .where('failing_since', '=', failingSince)
      .executeTakeFirst();
    if (result.numUpdatedRows === 0n) return false;
    await cancelPendingDeliveries(trx, endpointId, nowIso, notSentWhileDisabled(reason));
    return true;
  });
}
