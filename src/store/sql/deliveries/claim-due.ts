import { sql, type Kysely, type Transaction } from 'kysely';
import type { ClaimedDelivery, ClaimRoom } from '../../../domain/ports/deliveries-repository.js';
import type { Database } from '../../schema.js';
import { claimIsLive, toDelivery, type QueueCapabilities } from './claims.js';

/**
 * The PostgreSQL advisory lock that serializes claims (taken first in every claim transaction,
 * released at its commit): this class and the schema's hash, so that deployments in separate
 * schemas of one database do not wait for each other. The two-key form never collides with
 * the migration lock's one-key id.
 */
export const CLAIM_LOCK_CLASS = 710548633;

/** How many candidates per wanted delivery the claim reads, for the room filter to choose from. */
const CANDIDATES_PER_SLOT = 4;

/**
 * Deliveries in flight under live claims (every owner), per endpoint and per account: what
 * the configured limits already hold. At most the cluster's total concurrency rows, read
 * through the (status, locked_by) index.
 */
async function liveClaimCounts(trx: Transaction<Database>, capabilities: QueueCapabilities, owner: string, now: number) {
  const rows = await trx
    .selectFrom('webhook_deliveries as d')
    .select(['d.endpoint_id', 'd.account_id', (eb) => eb.fn.countAll<number | string>().as('n')])
    .where('d.status', '=', 'in_flight')
    .where((eb) => claimIsLive(eb, capabilities, owner, now))
    .groupBy(['d.endpoint_id', 'd.account_id'])
    .execute();
  const byEndpoint = new Map<string, number>();
  const byAccount = new Map<string, number>();
  for (const row of rows) {
    const n = Number(row.n);
    byEndpoint.set(row.endpoint_id, (byEndpoint.get(row.endpoint_id) ?? 0) + n);
    byAccount.set(row.account_id, (byAccount.get(row.account_id) ?? 0) + n);
  }
  return { byEndpoint, byAccount };
}

/**
 * The room of this claim: the worker's own (its free slots) and, at most, what the configured
 * limits leave beside the deliveries in flight anywhere.
 */
function clusterRoom(room: ClaimRoom, inFlight: Awaited<ReturnType<typeof liveClaimCounts>>): ClaimRoom {
  const perAccount = room.limits.perAccount ?? Infinity;
  const forEndpoint = (id: string) => Math.min(room.forEndpoint(id), room.limits.perEndpoint - (inFlight.byEndpoint.get(id) ?? 0));
  const forAccount = (id: string) => Math.min(room.forAccount(id), perAccount - (inFlight.byAccount.get(id) ?? 0));
  return {
    forEndpoint,
    forAccount,
    fullEndpoints: [...new Set([...room.fullEndpoints, ...[...inFlight.byEndpoint.keys()].filter((id) => forEndpoint(id) <= 0)])],
    fullAccounts: [...new Set([...room.fullAccounts, ...[...inFlight.byAccount.keys()].filter((id) => forAccount(id) <= 0)])],
    limits: room.limits,
  };
}

/**
 * Claims due deliveries for `owner` (see DeliveriesRepository.claimDue), in one transaction:
 *
 * 1. PostgreSQL: `pg_advisory_xact_lock(CLAIM_LOCK_CLASS, <schema>)`, so claims run one at a time and each
 *    counts the claims committed before it (read committed: every statement sees the latest
 *    commits). SQLite: the transaction already holds the database's write lock.
 * 2. The deliveries in flight under live claims, per endpoint and account, against the limits.
 * 3. The oldest due candidates, skipping full endpoints and accounts; PostgreSQL locks them
 *    `for update of d skip locked`, passing over rows another transaction is changing
 *    (an attempt being recorded, a reap, a cancellation) instead of waiting for it.
 * 4. The chosen ones become in flight: owner, lease, attempt counted.
 */
export function claimDue(
  db: Kysely<Database>,
  capabilities: QueueCapabilities,
  owner: string,
  now: number,
  limit: number,
  leaseMs: number,
  localRoom: ClaimRoom,
): Promise<ClaimedDelivery[]> {
  return db.transaction().execute(async (trx) => {
    if (capabilities.rowLocks) await sql`select pg_advisory_xact_lock(${sql.lit(CLAIM_LOCK_CLASS)}, hashtext(current_schema()))`.execute(trx);
    const room = clusterRoom(localRoom, await liveClaimCounts(trx, capabilities, owner, now));
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
        'd.locked_by',
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
    due = due.orderBy('d.next_attempt_at').orderBy('d.seq').limit(limit * CANDIDATES_PER_SLOT);
    if (capabilities.rowLocks) due = due.forUpdate('d').skipLocked();
    const candidates = await due.execute();
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
    const lockedUntil = now + leaseMs;
    const claimed = await trx
      .updateTable('webhook_deliveries')
      .set((eb) => ({ status: 'in_flight', locked_by: owner, locked_until: lockedUntil, attempts: eb('attempts', '+', 1) }))
      .where(
        'id',
        'in',
        rows.map((r) => r.id),
      )
      // Locked (PostgreSQL) or under the write lock (SQLite): still pending; checked all the same.
      .where('status', '=', 'pending')
      .returning('id')
      .execute();
    const ids = new Set(claimed.map((r) => r.id));
    return rows.filter((row) => ids.has(row.id)).map((row) => ({
      ...toDelivery(row),
      status: 'in_flight' as const,
      attempts: row.attempts + 1,
      locked_by: owner,
      payload: row.payload,
      url: row.url,
      headers: JSON.parse(row.headers) as Record<string, string>,
      timeout_ms: row.timeout_ms,
    }));
  });
}
