import type { Kysely } from 'kysely';
import type { StoredBatch } from '../../../domain/ports/telemetry-repository.js';
import type { Database } from '../../schema.js';

/**
 * The shard's batches after `afterSeq`, in shard_seq order (the (shard, shard_seq) index).
 * Numbers are dense and commit in order within a shard, so what is read is a gapless run
 * from afterSeq + 1: a batch numbered later cannot be visible while an earlier one is not.
 */
export function unrolled(db: Kysely<Database>, shard: number, afterSeq: number, limit: number): Promise<StoredBatch[]> {
  return db
    .selectFrom('telemetry_batches')
    .select(['shard_seq', 'shard', 'account_id', 'received_at', 'deltas'])
    .where('shard', '=', shard)
    .where('shard_seq', '>', afterSeq)
    .orderBy('shard_seq')
    .limit(limit)
    .execute()
    .then((rows) => rows.map((r) => ({ ...r, shard_seq: Number(r.shard_seq), received_at: Number(r.received_at) })));
}
