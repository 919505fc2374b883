import type { Kysely } from 'kysely';
import type { Database } from '../../schema.js';

/**
 * When a claim may next find work: the earliest next attempt among the pending deliveries
 * of enabled endpoints, or the earliest claim lease to pass (any owner's), to know when to
 * wake up. A claim of a dead instance is found by the reap that runs every poll interval.
 */
export async function nextDueAt(db: Kysely<Database>): Promise<number | null> {
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
  // Claims in flight are few (at most the instances' concurrency).
  const claim = await db
    .selectFrom('webhook_deliveries')
    .select((eb) => eb.fn.min<number | null>('locked_until').as('expires'))
    .where('status', '=', 'in_flight')
    .executeTakeFirst();
  const times = [row?.next_attempt_at, claim?.expires].filter((t): t is number => t !== null && t !== undefined).map(Number);
  return times.length === 0 ? null : Math.min(...times);
}
