import { sql, type Kysely } from 'kysely';
import { AppError } from '../domain/errors.js';
import { shardOf } from '../domain/shards.js';
import type { TelemetryHistory, TelemetryHistoryRepository } from '../domain/ports/telemetry-history.js';
import type { Database } from './schema.js';

/**
 * A roll-up commits every second or so and each read below takes milliseconds: a read that
 * keeps being overtaken this often means something is wrong, not unlucky.
 */
const MAX_ATTEMPTS = 10;

const COUNTER_COLUMNS = ['second', 'call', 'call_crash', 'turn', 'api_error', 'function_error'] as const;

/**
 * Reads a scope's telemetry from the roll-up tables and from the batches not yet folded into
 * them. No transaction (a long one would hold back the roll-up and, on PostgreSQL, vacuum):
 * the shard's roll-up progress is read before and after; a fold commits its rows and its
 * progress together, so when the progress did not move, the rows hold exactly the batches up
 * to it and the batches read hold every later one committed by then.
 */
export function createTelemetryHistoryRepository(db: Kysely<Database>): TelemetryHistoryRepository {
  const rolledThrough = async (shard: number): Promise<number> => {
    const row = await db.selectFrom('telemetry_rollup_progress').select('rolled_seq').where('shard', '=', shard).executeTakeFirst();
    return row === undefined ? 0 : Number(row.rolled_seq);
  };

  return {
    async read(q): Promise<TelemetryHistory> {
      const shard = shardOf(q.accountId);
      // '' is the account's key in the roll-up tables; a rule may name a project '', which no
      // event can have (telemetry project ids are never empty): it has no telemetry.
      if (q.project === '') return { minutes: [], seconds: [], batches: [], lastSeenSecond: null };
      const projectKey = q.project ?? '';
      const minutesThrough = Math.min(q.cutoffSecond, q.throughSecond);
      const secondsAfter = Math.max(q.afterSecond, q.cutoffSecond);
      // The histograms are most of what a row weighs: count metrics do without them.
      const latencies = q.latencies ? sql.ref<string>('latencies') : sql<string>`'[]'`;
      for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
        const rolled = await rolledThrough(shard);
        // Batches first: any committed after this read are later than everything read here.
        const batches = await db
          .selectFrom('telemetry_batches')
          .select(['received_at', 'deltas'])
          .where('shard', '=', shard)
          .where('account_id', '=', q.accountId)
          .where('shard_seq', '>', rolled)
          .where('received_at', '>', q.seenAfterSecond * 1000)
          .orderBy('shard_seq')
          .execute();
        const minutes =
          minutesThrough > q.afterSecond
            ? await db
                .selectFrom('telemetry_minutes')
                .select([...COUNTER_COLUMNS, latencies.as('latencies')])
                .where('account_id', '=', q.accountId)
                .where('project_key', '=', projectKey)
                .where('second', '>', q.afterSecond)
                .where('second', '<=', minutesThrough)
                .orderBy('second')
                .execute()
            : [];
        const seconds =
          q.throughSecond > secondsAfter
            ? await db
                .selectFrom('telemetry_seconds')
                .select([...COUNTER_COLUMNS, latencies.as('latencies')])
                .where('account_id', '=', q.accountId)
                .where('project_key', '=', projectKey)
                .where('second', '>', secondsAfter)
                .where('second', '<=', q.throughSecond)
                .orderBy('second')
                .execute()
            : [];
        // Whether the scope was known before the range: its latest placement, per minute up
        // to the cutoff and per second after it (as the range itself is read).
        const seenMinute = q.lastSeen
          ? await db
              .selectFrom('telemetry_minutes')
              .select((eb) => eb.fn.max('second').as('last'))
              .where('account_id', '=', q.accountId)
              .where('project_key', '=', projectKey)
              .where('second', '>', q.seenAfterSecond)
              .where('second', '<=', Math.min(q.afterSecond, q.cutoffSecond))
              .executeTakeFirst()
          : undefined;
        const seenSecond =
          q.lastSeen && q.afterSecond > q.cutoffSecond
            ? await db
                .selectFrom('telemetry_seconds')
                .select((eb) => eb.fn.max('second').as('last'))
                .where('account_id', '=', q.accountId)
                .where('project_key', '=', projectKey)
                .where('second', '>', Math.max(q.seenAfterSecond, q.cutoffSecond))
                .where('second', '<=', q.afterSecond)
                .executeTakeFirst()
            : undefined;
        if ((await rolledThrough(shard)) !== rolled) continue;
        const seen = [seenMinute?.last, seenSecond?.last].filter((s) => s !== null && s !== undefined).map(Number);
        return {
          minutes,
          seconds,
          batches: batches.map((b) => ({ received_at: Number(b.received_at), deltas: b.deltas })),
          lastSeenSecond: seen.length > 0 ? Math.max(...seen) : null,
        };
      }
      throw new AppError('unavailable', 'the telemetry roll-up kept moving while it was read; try again');
    },
  };
}
