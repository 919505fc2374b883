import type { Kysely } from 'kysely';
import type { RollupTable } from '../../../domain/ports/telemetry-rollup-repository.js';
import type { Database } from '../../schema.js';
import { ROLLUP_TABLES } from './tables.js';

/**
 * Deletes the `limit` oldest rows of a roll-up table whose second is before `beforeSecond`
 * (the `second` index finds them), in one short statement: ingestion and folds do not wait
 * long for it. Rows of any shard: pruning by age needs no lease.
 */
export async function prune(db: Kysely<Database>, which: RollupTable, beforeSecond: number, limit: number): Promise<number> {
  const table = ROLLUP_TABLES[which];
  const result = await db
    .deleteFrom(table)
    .where((eb) =>
      eb(
        eb.refTuple('account_id', 'project_key', 'second'),
        'in',
        eb.selectFrom(table).select(['account_id', 'project_key', 'second']).where('second', '<', beforeSecond).orderBy('second').limit(limit).$asTuple('account_id', 'project_key', 'second'),
      ),
    )
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
