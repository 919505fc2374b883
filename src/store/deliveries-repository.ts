import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import { ID_PREFIX, newId } from '../domain/ids.js';
import type { AlertEvent } from '../domain/ports/alert-events-repository.js';
import {
  NO_RESULT_ERROR,
  type AttemptOutcome,
  type AttemptRecord,
  type ClaimedDelivery,
  type DeliveriesRepository,
  type Delivery,
  type DeliveryStatus,
  type ExpiredClaims,
} from '../domain/ports/deliveries-repository.js';
import type { Database, WebhookDeliveriesTable } from './schema.js';

type Row = Selectable<WebhookDeliveriesTable>;

function toDelivery(row: Row): Delivery {
  return {
    id: row.id,
    account_id: row.account_id,
    endpoint_id: row.endpoint_id,
    event_id: row.event_id,
    event_type: row.event_type,
    status: row.status as DeliveryStatus,
    attempts: row.attempts,
    max_attempts: row.max_attempts,
    next_attempt_at: row.next_attempt_at === null ? null : Number(row.next_attempt_at),
    last_error: row.last_error,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

/**
 * Creates the deliveries of a new event, inside the transaction that writes the event: one
 * per enabled endpoint of the account subscribed to its type. Returns how many.
 */
export async function insertDeliveriesForEvent(
  trx: Transaction<Database>,
  event: AlertEvent,
  maxAttempts: number,
  now: number,
): Promise<number> {
  const endpoints = await trx
    .selectFrom('webhook_endpoints')
    .select(['id', 'event_types'])
    .where('account_id', '=', event.account_id)
    .where('enabled', '=', 1)
    .execute();
  const subscribed = endpoints.filter((e) => (JSON.parse(e.event_types) as string[]).includes(event.event_type));
  if (subscribed.length === 0) return 0;
  await trx
    .insertInto('webhook_deliveries')
    .values(
      subscribed.map((endpoint) => ({
        id: newId(ID_PREFIX.delivery),
        account_id: event.account_id,
        endpoint_id: endpoint.id,
        event_id: event.id,
        event_type: event.event_type,
        status: 'pending',
        attempts: 0,
        max_attempts: maxAttempts,
        next_attempt_at: now,
        locked_until: null,
        last_error: null,
        created_at: event.created_at,
        updated_at: event.created_at,
      })),
    )
    .execute();
  return subscribed.length;
}

/**
 * Cancels the unfinished deliveries of an endpoint being deleted (same transaction). One
 * in flight is cancelled too (its attempt is aborted, and not counted): should it still
 * complete, recordAttempt leaves a cancelled delivery cancelled, so it is never rescheduled
 * for an endpoint that is gone.
 */
export async function cancelPendingDeliveries(trx: Transaction<Database>, endpointId: string, nowIso: string): Promise<void> {
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
      updated_at: nowIso,
      last_error: 'endpoint deleted',
    }))
    .where('endpoint_id', '=', endpointId)
    .where('status', 'in', ['pending', 'in_flight'])
    .execute();
}

interface PendingAttempt {
  delivery: ClaimedDelivery;
  attempt: AttemptRecord;
  outcome: AttemptOutcome;
  nowIso: string;
  resolve(): void;
  reject(error: unknown): void;
}

export function createDeliveriesRepository(db: Kysely<Database>): DeliveriesRepository {
  // Group commit: attempts recorded in the same turn of the event loop are written in one
  // transaction, so many deliveries share one disk sync (synchronous = FULL syncs on every
  // commit, and that sync, not the work, bounded the worker at about 1,000 attempts/s). Each
  // caller still resolves only once its own attempt and state are committed.
  let pendingAttempts: PendingAttempt[] = [];
  const flushAttempts = () => {
    const batch = pendingAttempts;
    pendingAttempts = [];
    db.transaction()
      .execute(async (trx) => {
        // Multi-row statements: two per batch for the common case instead of two per attempt.
        for (let i = 0; i < batch.length; i += 100) {
          await trx
            .insertInto('webhook_attempts')
            .values(batch.slice(i, i + 100).map((item) => item.attempt))
            .execute();
        }
        const delivered = batch.filter((item) => item.outcome.kind === 'delivered');
        for (let i = 0; i < delivered.length; i += 500) {
          await trx
            .updateTable('webhook_deliveries')
            .set({
              status: 'delivered',
              next_attempt_at: null,
              locked_until: null,
              last_error: null,
              updated_at: delivered[delivered.length - 1]!.nowIso,
            })
            .where(
              'id',
              'in',
              delivered.slice(i, i + 500).map((item) => item.delivery.id),
            )
            // A delivery cancelled meanwhile (endpoint deleted) stays cancelled.
            .where('status', '=', 'in_flight')
            .execute();
        }
        for (const { delivery, outcome, nowIso } of batch) {
          if (outcome.kind === 'delivered') continue;
          await trx
            .updateTable('webhook_deliveries')
            .set({
              status: outcome.kind === 'retry' ? 'pending' : outcome.kind,
              next_attempt_at: outcome.kind === 'retry' ? outcome.nextAttemptAt : null,
              locked_until: null,
              last_error: outcome.error,
              updated_at: nowIso,
            })
            .where('id', '=', delivery.id)
            .where('status', '=', 'in_flight')
            .execute();
        }
      })
      .then(
        () => batch.forEach((item) => item.resolve()),
        (error: unknown) => batch.forEach((item) => item.reject(error)),
      );
  };

  /**
   * Ends in-flight claims without a result: those expired by `now` (or all of them), but for
   * the `except` ids. Each is due again now, or failed when the claim was the delivery's
   * last attempt. The attempt stays counted: it may be the one that killed the process.
   */
  async function endClaims(now: number, nowIso: string, options: { expired: boolean; lastError: string; except?: readonly string[] }): Promise<ExpiredClaims> {
    const except = new Set(options.except);
    // Usually none: a cheap indexed look (claims in flight are at most the worker's
    // concurrency) with one statement text, before any write.
    let query = db.selectFrom('webhook_deliveries').select(['id', 'attempts', 'max_attempts']).where('status', '=', 'in_flight');
    if (options.expired) query = query.where('locked_until', '<', now);
    const ended = (await query.execute()).filter((row) => !except.has(row.id));
    if (ended.length === 0) return { released: 0, failed: [] };
    const last = ended.filter((row) => row.attempts >= row.max_attempts).map((row) => row.id);
    const again = ended.filter((row) => row.attempts < row.max_attempts).map((row) => row.id);
    return db.transaction().execute(async (trx) => {
      const failed: Selectable<WebhookDeliveriesTable>[] = [];
      let released = 0;
      for (let i = 0; i < last.length; i += 500) {
        failed.push(
          ...(await trx
            .updateTable('webhook_deliveries')
            .set({ status: 'failed', next_attempt_at: null, locked_until: null, last_error: options.lastError, updated_at: nowIso })
            .where('id', 'in', last.slice(i, i + 500))
            .where('status', '=', 'in_flight')
            .returningAll()
            .execute()),
        );
      }
      for (let i = 0; i < again.length; i += 500) {
        const result = await trx
          .updateTable('webhook_deliveries')
          .set({ status: 'pending', next_attempt_at: now, locked_until: null, updated_at: nowIso })
          .where('id', 'in', again.slice(i, i + 500))
          .where('status', '=', 'in_flight')
          .executeTakeFirst();
        released += Number(result.numUpdatedRows);
      }
      return { released, failed: failed.map(toDelivery) };
    });
  }

  return {
    claimDue(now, limit, leaseMs, room) {
      return db.transaction().execute(async (trx) => {
        let due = trx
          .selectFrom('webhook_deliveries as d')
          .innerJoin('webhook_endpoints as e', 'e.id', 'd.endpoint_id')
          .innerJoin('alert_events as ev', 'ev.id', 'd.event_id')
          .select([
            'd.id',
            'd.account_id',
            'd.endpoint_id',
            'd.event_id',
            'd.event_type',
            'd.status',
            'd.attempts',
            'd.max_attempts',
            'd.next_attempt_at',
            'd.last_error',
            'd.created_at',
            'd.updated_at',
            'd.seq',
            'd.locked_until',
            'ev.payload',
            'e.url',
            'e.headers',
            'e.timeout_ms',
          ])
          .where('d.status', '=', 'pending')
          .where('d.next_attempt_at', '<=', now)
          .where('e.enabled', '=', 1);
        // A busy endpoint's or account's backlog must not hide the due work of the others.
        if (room.fullEndpoints.length > 0) due = due.where('d.endpoint_id', 'not in', [...room.fullEndpoints]);
        if (room.fullAccounts.length > 0) due = due.where('d.account_id', 'not in', [...room.fullAccounts]);
        const candidates = await due.orderBy('d.next_attempt_at').orderBy('d.seq').limit(limit * 4).execute();
        const takenByEndpoint = new Map<string, number>();
        const takenByAccount = new Map<string, number>();
        const rows = candidates
          .filter((row) => {
            const byEndpoint = takenByEndpoint.get(row.endpoint_id) ?? 0;
            const byAccount = takenByAccount.get(row.account_id) ?? 0;
            if (byEndpoint >= room.forEndpoint(row.endpoint_id) || byAccount >= room.forAccount(row.account_id)) return false;
            takenByEndpoint.set(row.endpoint_id, byEndpoint + 1);
            takenByAccount.set(row.account_id, byAccount + 1);
            return true;
          })
          .slice(0, limit);
        if (rows.length === 0) return [];
        await trx
          .updateTable('webhook_deliveries')
          .set((eb) => ({ status: 'in_flight', locked_until: now + leaseMs, attempts: eb('attempts', '+', 1) }))
          .where(
            'id',
            'in',
            rows.map((r) => r.id),
          )
          .execute();
        return rows.map((row) => ({
          ...toDelivery(row),
          status: 'in_flight' as const,
          attempts: row.attempts + 1,
          payload: row.payload,
          url: row.url,
          headers: JSON.parse(row.headers) as Record<string, string>,
          timeout_ms: row.timeout_ms,
        }));
      });
    },

    recordAttempt(delivery, attempt, outcome, nowIso) {
      return new Promise<void>((resolve, reject) => {
        pendingAttempts.push({ delivery, attempt, outcome, nowIso, resolve, reject });
        if (pendingAttempts.length === 1) setImmediate(flushAttempts);
      });
    },

    async release(ids, now, nowIso) {
      if (ids.length === 0) return;
      await db
        .updateTable('webhook_deliveries')
        .set((eb) => ({
          status: 'pending',
          // The claim counted an attempt that was never made (or never answered): give it back.
          attempts: sql<number>`case when ${eb.ref('attempts')} > 0 then ${eb.ref('attempts')} - 1 else 0 end`,
          next_attempt_at: now,
          locked_until: null,
          updated_at: nowIso,
        }))
        .where('id', 'in', [...ids])
        .where('status', '=', 'in_flight')
        .execute();
    },

    expireClaims: (now, nowIso, except) => endClaims(now, nowIso, { expired: true, lastError: NO_RESULT_ERROR, except }),

    releaseAllInFlight: (now, nowIso) => endClaims(now, nowIso, { expired: false, lastError: 'no result recorded before the previous run ended' }),

    async nextDueAt() {
      // Same endpoint condition as claimDue: a disabled endpoint's held retries are never
      // claimed, so counting them would make the worker wake up at once, again and again.
      // ORDER BY + LIMIT walks the due index and stops at the first hit; min() over the
      // join would visit every pending delivery on every wake-up.
      const row = await db
        .selectFrom('webhook_deliveries as d')
        .innerJoin('webhook_endpoints as e', 'e.id', 'd.endpoint_id')
        .select('d.next_attempt_at')
        .where('d.status', '=', 'pending')
        .where('e.enabled', '=', 1)
        .orderBy('d.next_attempt_at')
        .limit(1)
        .executeTakeFirst();
      // Claims in flight are few (at most the worker's concurrency).
      const claim = await db
        .selectFrom('webhook_deliveries')
        .select((eb) => eb.fn.min<number | null>('locked_until').as('expires'))
        .where('status', '=', 'in_flight')
        .executeTakeFirst();
      const times = [row?.next_attempt_at, claim?.expires].filter((t): t is number => t !== null && t !== undefined).map(Number);
      return times.length === 0 ? null : Math.min(...times);
    },

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

    async retryNow(accountId, endpointId, id, now, nowIso) {
      const result = await db
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
      return result.numUpdatedRows > 0n;
    },
  };
}
