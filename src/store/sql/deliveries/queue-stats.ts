import type { Kysely } from 'kysely';
import type { Database } from '../../schema.js';

/**
 * How many deliveries wait for an attempt or are in flight, and when the oldest of them was
 * created (epoch ms), over the whole database: what /metrics reports as the queue. Deliveries
 * of disabled endpoints count: they wait too.
 */
export async function queueStats(db: Kysely<Database>): Promise<{ depth: number; oldestCreatedAt: number | null }> {
  const row = await db
    .selectFrom('webhook_deliveries')
    .select((eb) => [eb.fn.countAll<number | string>().as('depth'), eb.fn.min<string | null>('created_at').as('oldest')])
    .where('status', 'in', ['pending', 'in_flight'])
    .executeTakeFirstOrThrow();
  return { depth: Number(row.depth), oldestCreatedAt: row.oldest === null ? null : Date.parse(row.oldest) };
}
