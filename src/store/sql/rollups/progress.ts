import type { Kysely } from 'kysely';
import type { RollupProgress } from '../../../domain/ports/telemetry-rollup-repository.js';
import type { Database } from '../../schema.js';

/** Every shard's rolled_seq beside its last committed shard_seq: 64 primary-key rows, one statement. */
export async function progress(db: Kysely<Database>): Promise<RollupProgress[]> {
  const rows = await db
    .selectFrom('telemetry_rollup_progress as p')
    .innerJoin('shard_sequences as s', 's.shard', 'p.shard')
    .select(['p.shard', 'p.rolled_seq', 's.last_seq'])
    .orderBy('p.shard')
    .execute();
  return rows.map((r) => ({ shard: Number(r.shard), rolledSeq: Number(r.rolled_seq), lastSeq: Number(r.last_seq) }));
}
