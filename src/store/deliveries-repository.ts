import { attemptsAfter, lastAttemptSeq } from './sql/deliveries/attempts-after.js';
import { queueStats } from './sql/deliveries/queue-stats.js';
import type { Kysely, Transaction } from 'kysely';
import { notSentWhileDisabled } from '../domain/endpoint-health.js';
import { ID_PREFIX, newId } from '../domain/ids.js';
import type { AlertEvent } from '../domain/ports/alert-events-repository.js';
import type { DeliveriesRepository, RecordedAttempt } from '../domain/ports/deliveries-repository.js';
import { CHANNELS } from '../domain/ports/notifications.js';
import type { Database } from './schema.js';
import { claimDue } from './sql/deliveries/claim-due.js';
import { disableFailingEndpoint } from './sql/deliveries/disable-failing-endpoint.js';
import { toDelivery, type QueueCapabilities } from './sql/deliveries/claims.js';
import { nextDueAt } from './sql/deliveries/next-due-at.js';
import { reapExpired } from './sql/deliveries/reap-expired.js';
import { recordAttempts, type AttemptToRecord } from './sql/deliveries/record-attempts.js';
import { release } from './sql/deliveries/release.js';

/**
 * Creates the deliveries of a new event, inside the transaction that writes the event: one
 * per enabled endpoint of the account subscribed to its type, due now. An endpoint the
 * service disabled (its attempts all failed for too long) gets one too, already cancelled and
 * naming why: the deliveries list shows what it missed, and re-enabling it sends none of them
 * (no flood of stale alerts). One disabled through the API gets none. Returns how many are due.
 */
export async function insertDeliveriesForEvent(
  trx: Transaction<Database>,
  event: AlertEvent,
  maxAttempts: number,
  now: number,
): Promise<number> {
  const endpoints = await trx
    .selectFrom('webhook_endpoints')
    .select(['id', 'event_types', 'enabled', 'disabled_reason'])
    .where('account_id', '=', event.account_id)
    .where((eb) => eb.or([eb('enabled', '=', 1), eb('disabled_reason', 'is not', null)]))
    .execute();
  const subscribed = endpoints.filter((e) => (JSON.parse(e.event_types) as string[]).includes(event.event_type));
  if (subscribed.length === 0) return 0;
  await trx
    .insertInto('webhook_deliveries')
    .values(
      subscribed.map((endpoint) => {
        const due = endpoint.enabled === 1;
        return {
          id: newId(ID_PREFIX.delivery),
          account_id: event.account_id,
          endpoint_id: endpoint.id,
          event_id: event.id,
          event_type: event.event_type,
          status: due ? 'pending' : 'cancelled',
          attempts: 0,
          max_attempts: maxAttempts,
          next_attempt_at: due ? now : null,
          locked_until: null,
          locked_by: null,
          last_error: due ? null : notSentWhileDisabled(endpoint.disabled_reason ?? ''),
          created_at: event.created_at,
          updated_at: event.created_at,
        };
      }),
    )
    .execute();
  return subscribed.filter((e) => e.enabled === 1).length;
}

// Deleting an endpoint cancels its unfinished deliveries (webhook-endpoints-repository.ts).
export { cancelPendingDeliveries } from './sql/deliveries/cancel-unfinished.js';

interface PendingAttempt extends AttemptToRecord {
  resolve(recorded: RecordedAttempt): void;
  reject(error: unknown): void;
}

/**
 * The deliveries queue (its statements: sql/deliveries/, one per file) and the API's reads.
 * `capabilities`: the store adapter's (row locks, the database's clock, wake-ups).
 */
export function createDeliveriesRepository(db: Kysely<Database>, capabilities: QueueCapabilities): DeliveriesRepository {
  // Group commit: attempts recorded in the same turn of the event loop are written in one
  // transaction, so many deliveries share one disk sync (synchronous = FULL syncs on every
  // commit, and that sync, not the work, bounded the worker at about 1,000 attempts/s). Each
  // caller still resolves only once its own attempt and state are committed.
  let pendingAttempts: PendingAttempt[] = [];
  const flushAttempts = () => {
    const batch = pendingAttempts;
    pendingAttempts = [];
    db.transaction()
      .execute((trx) => recordAttempts(trx, batch))
      .then(
        (failingSince) => batch.forEach((item) => item.resolve({ endpointFailingSince: failingSince.get(item.delivery.endpoint_id) ?? null })),
        (error: unknown) => batch.forEach((item) => item.reject(error)),
      );
  };

  return {
    claimDue: (owner, now, limit, leaseMs, room) => claimDue(db, capabilities, owner, now, limit, leaseMs, room),

    recordAttempt(delivery, attempt, outcome, nowIso) {
      return new Promise<RecordedAttempt>((resolve, reject) => {
        pendingAttempts.push({ delivery, attempt, outcome, nowIso, resolve, reject });
        if (pendingAttempts.length === 1) setImmediate(flushAttempts);
      });
    },

    disableFailingEndpoint: (endpointId, failingSince, reason, nowIso) => disableFailingEndpoint(db, endpointId, failingSince, reason, nowIso),

    async release(owner, ids, now, nowIso) {
      await release(db, capabilities, owner, ids, now, nowIso);
    },

    reapExpired: (owner, now, nowIso, held = []) => reapExpired(db, { capabilities, owner, held, now }, nowIso),

    nextDueAt: () => nextDueAt(db),

    async list(accountId, endpointId, filter, limit) {
      let query = db
        .selectFrom('webhook_deliveries')
        .selectAll()
        .where('account_id', '=', accountId)
        .where('endpoint_id', '=', endpointId);
      if (filter.status) query = query.where('status', '=', filter.status);
      if (filter.event_type) query = query.where('event_type', '=', filter.event_type);
      const rows = await query.orderBy('seq', 'desc').limit(limit).execute();
      return rows.map(toDelivery);
    },

    async get(accountId, endpointId, id) {
      const row = await db
        .selectFrom('webhook_deliveries')
        .selectAll()
        .where('account_id', '=', accountId)
        .where('endpoint_id', '=', endpointId)
        .where('id', '=', id)
        .executeTakeFirst();
      return row && toDelivery(row);
    },

    async attemptsOf(deliveryIds) {
      if (deliveryIds.length === 0) return [];
      return db
        .selectFrom('webhook_attempts')
        .select(['delivery_id', 'attempt', 'started_at', 'duration_ms', 'status_code', 'error_class', 'error', 'response_body'])
        .where('delivery_id', 'in', [...deliveryIds])
        .orderBy('seq')
        .execute();
    },

    attemptsAfter: (accountId, afterSeq, limit) => attemptsAfter(db, accountId, afterSeq, limit),
    lastAttemptSeq: () => lastAttemptSeq(db),
    queueStats: () => queueStats(db),

    async retryNow(accountId, endpointId, id, now, nowIso) {
      return db.transaction().execute(async (trx) => {
        const result = await trx
          .updateTable('webhook_deliveries')
          .set((eb) => ({
            status: 'pending',
            next_attempt_at: now,
            // One more attempt; if it fails the delivery is failed again.
            max_attempts: eb('attempts', '+', 1),
            last_error: null,
            updated_at: nowIso,
          }))
          .where('account_id', '=', accountId)
          .where('endpoint_id', '=', endpointId)
          .where('id', '=', id)
          .where('status', 'in', ['delivered', 'failed'])
          .executeTakeFirst();
        if (result.numUpdatedRows === 0n) return false;
        await capabilities.notifyWithin(trx, CHANNELS.deliveries, '');
        return true;
      });
    },
  };
}
