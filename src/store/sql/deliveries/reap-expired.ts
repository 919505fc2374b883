import type { Expression, Kysely, SqlBool } from 'kysely';
import type { ReapedClaims } from '../../../domain/ports/deliveries-repository.js';
import { NO_RESULT_ERROR } from '../../../domain/ports/deliveries-repository.js';
import { CHANNELS } from '../../../domain/ports/notifications.js';
import type { Database } from '../../schema.js';
import { ownerIsLive, toDelivery, type DeliveriesAs, type QueueCapabilities } from './claims.js';

interface Reaper {
  capabilities: QueueCapabilities;
  /** The instance reaping: alive, as it knows. */
  owner: string;
  /** Claims it holds (attempts it is still running): never reaped by itself. */
  held: readonly string[];
  now: number;
}

/**
 * An in-flight `d` whose claim ended without a result. Its lease passed (`locked_until <
 * now`), or its owner is not a live instance (no cluster_instances row with `expires_at`
 * after the database's clock; a claim without an owner, from before instances had ids,
 * neither). The reaper's own claims end only by their lease, and those it holds not at all.
 */
function claimEnded(eb: DeliveriesAs, { capabilities, owner, held, now }: Reaper): Expression<SqlBool> {
  const expired = eb('d.locked_until', '<', now);
  const own = [eb('d.locked_by', '=', owner), expired];
  if (held.length > 0) own.push(eb('d.id', 'not in', [...held]));
  return eb.or([
    eb.and(own),
    eb.and([
      eb.or([eb('d.locked_by', 'is', null), eb('d.locked_by', '!=', owner)]),
      eb.or([expired, eb.not(ownerIsLive(capabilities.now))]),
    ]),
  ]);
}

/**
 * Ends the claims that ended without a result (see claimEnded): each is due again now (the
 * attempt stays counted: it may be the one that killed its process), or failed with
 * NO_RESULT_ERROR when it was the delivery's last attempt. Every condition is in the UPDATE
 * itself, so a claim taken again meanwhile (by anyone: a live owner, a fresh lease) is never
 * reaped by a concurrent reaper that saw the older one. Wakes every instance when any came
 * back due.
 */
export async function reapExpired(db: Kysely<Database>, reaper: Reaper, nowIso: string): Promise<ReapedClaims> {
  // Usually none: a cheap look through the (status, locked_by) index (claims in flight are at
  // most the instances' concurrency), before any write transaction.
  const any = await db
    .selectFrom('webhook_deliveries as d')
    .select('d.id')
    .where('d.status', '=', 'in_flight')
    .where((eb) => claimEnded(eb, reaper))
    .limit(1)
    .executeTakeFirst();
  if (any === undefined) return { released: 0, failed: [] };
  return db.transaction().execute(async (trx) => {
    const failed = await trx
      .updateTable('webhook_deliveries as d')
      .set({ status: 'failed', next_attempt_at: null, locked_until: null, locked_by: null, last_error: NO_RESULT_ERROR, updated_at: nowIso })
      .where('d.status', '=', 'in_flight')
      .whereRef('d.attempts', '>=', 'd.max_attempts')
      .where((eb) => claimEnded(eb, reaper))
      .returningAll()
      .execute();
    const again = await trx
      .updateTable('webhook_deliveries as d')
      .set({ status: 'pending', next_attempt_at: reaper.now, locked_until: null, locked_by: null, updated_at: nowIso })
      .where('d.status', '=', 'in_flight')
      .whereRef('d.attempts', '<', 'd.max_attempts')
      .where((eb) => claimEnded(eb, reaper))
      .executeTakeFirst();
    const released = Number(again.numUpdatedRows);
    if (released > 0) await reaper.capabilities.notifyWithin(trx, CHANNELS.deliveries, '');
    return { released, failed: failed.map(toDelivery) };
  });
}
