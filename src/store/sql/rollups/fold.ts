import type { Kysely, Transaction } from 'kysely';
import { COUNTERS } from '../../../domain/telemetry.js';
import { mergeRollupRows, rollupKey, type RollupRow, type RollupRows } from '../../../domain/telemetry-rollups.js';
import type { KeyColumn, StoreAdapter } from '../../dialect/adapter.js';
import type { Database, TelemetryRollupTable } from '../../schema.js';
import { ROLLUP_TABLES, type RollupTableName } from './tables.js';

/** What a fold asks of the database beyond portable SQL: row locks, and the parameter limit. */
export type FoldCapabilities = Pick<StoreAdapter, 'rowLocks' | 'maxParameters' | 'keysIn'>;

/** The primary key of both tables. */
const KEY: readonly KeyColumn[] = [
  { name: 'account_id', type: 'text' },
  { name: 'project_key', type: 'text' },
  { name: 'second', type: 'bigint' },
];
/** Bound parameters of one upserted row: the key (3), five counters, the histogram. */
const PARAMETERS_PER_ROW = 9;

/**
 * Folds a run of a shard's batches into the roll-up tables, exactly once (see
 * TelemetryRollupRepository.fold). The shard's progress row is the lock: on PostgreSQL
 * `for update` makes a second roller of the shard wait and then see the rolled_seq the first
 * committed; on SQLite every transaction holds the write lock from its start. A fold that
 * finds rolled_seq moved since it read its batches writes nothing. Every row a fold touches
 * belongs to an account of the shard, so no other fold writes it meanwhile; the rows are read,
 * merged here, and written back whole. Pruning (prune.ts) takes rows past their retention
 * without this lock: rows a fold touches are at most an hour and five minutes older than
 * their batch (the accepted lateness and lead), far inside either retention, so the two meet
 * only after a roll-up lag of an hour; a row a fold then re-creates is pruned again.
 */
export async function fold(
  db: Kysely<Database>,
  capabilities: FoldCapabilities,
  shard: number,
  fromSeq: number,
  throughSeq: number,
  rows: RollupRows,
): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    let lock = trx.selectFrom('telemetry_rollup_progress').select('rolled_seq').where('shard', '=', shard);
    if (capabilities.rowLocks) lock = lock.forUpdate();
    const held = await lock.executeTakeFirst();
    if (held === undefined || Number(held.rolled_seq) !== fromSeq) return false;
    const perStatement = Math.min(500, Math.floor(capabilities.maxParameters / PARAMETERS_PER_ROW));
    await mergeInto(trx, capabilities, ROLLUP_TABLES.seconds, rows.seconds, perStatement);
    await mergeInto(trx, capabilities, ROLLUP_TABLES.minutes, rows.minutes, perStatement);
    await trx.updateTable('telemetry_rollup_progress').set({ rolled_seq: throughSeq }).where('shard', '=', shard).execute();
    return true;
  });
}

/** Adds `rows` (one per key) to the table's rows, `perStatement` keys at a time. */
async function mergeInto(
  trx: Transaction<Database>,
  capabilities: FoldCapabilities,
  table: RollupTableName,
  rows: readonly RollupRow[],
  perStatement: number,
): Promise<void> {
  for (let i = 0; i < rows.length; i += perStatement) {
    const chunk = rows.slice(i, i + perStatement);
    const stored = await trx
      .selectFrom(table)
      .selectAll()
      .where(capabilities.keysIn(KEY, chunk.map((r) => [r.accountId, r.project, r.second])))
      .execute();
    const existing = new Map(stored.map((s) => [rollupKey(s.account_id, s.project_key, Number(s.second)), fromStored(s)]));
    const merged = chunk.map((row) => {
      const before = existing.get(rollupKey(row.accountId, row.project, row.second));
      return toStored(before === undefined ? row : mergeRollupRows(before, row));
    });
    await trx
      .insertInto(table)
      .values(merged)
      .onConflict((oc) =>
        oc.columns(['account_id', 'project_key', 'second']).doUpdateSet((eb) => ({
          call: eb.ref('excluded.call'),
          call_crash: eb.ref('excluded.call_crash'),
          turn: eb.ref('excluded.turn'),
          api_error: eb.ref('excluded.api_error'),
          function_error: eb.ref('excluded.function_error'),
          latencies: eb.ref('excluded.latencies'),
        })),
      )
      .execute();
  }
}

function fromStored(s: TelemetryRollupTable): RollupRow {
  return {
    accountId: s.account_id,
    project: s.project_key,
    second: Number(s.second),
    counts: { call: Number(s.call), call_crash: Number(s.call_crash), turn: Number(s.turn), api_error: Number(s.api_error), function_error: Number(s.function_error) },
    latencies: JSON.parse(s.latencies) as number[],
  };
}

function toStored(r: RollupRow): TelemetryRollupTable {
  const row = { account_id: r.accountId, project_key: r.project, second: r.second, latencies: JSON.stringify(r.latencies) } as TelemetryRollupTable;
  for (const c of COUNTERS) row[c] = r.counts[c];
  return row;
}
