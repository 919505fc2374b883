import { sql, type Kysely } from 'kysely';
import type { MigrationDialect } from '../dialect/adapter.js';

/**
 * Rule history and telemetry kept beyond the evaluator's hour (issue 11):
 * - `alert_rule_history`: one row per state transition of a rule (those that send an event
 *   and those that do not), written in the transaction that changes the rule's state, with
 *   the rule's threshold, operator and window at that moment. `seq` orders a rule's history
 *   and is the pagination cursor.
 * - `telemetry_seconds` / `telemetry_minutes`: the telemetry of each scope (an account as a
 *   whole with project_key '', or one of its projects) per second and per minute: the five
 *   counters and the latency histogram as [bin, count, ...] JSON, the same mergeable bins as
 *   the evaluator's. A minute row's `second` is the LAST second it covers (a multiple of 60):
 *   it holds the seconds (second - 60, second], so a window (H - W, H] with H and W whole
 *   minutes is exactly W/60 minute rows.
 * - `telemetry_rollup_progress`: per shard, the highest `shard_seq` folded into both tables.
 *   The roll-up of a shard locks its row, so a batch is folded exactly once; a stored batch is
 *   pruned only once it is rolled up.
 */
export function historyAndRollupsMigration(dialect: MigrationDialect) {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('alert_rule_history')
        .addColumn('seq', dialect.autoIncrementType, (c) => dialect.autoIncrement(c))
        .addColumn('account_id', 'text', (c) => c.notNull())
        .addColumn('rule_id', 'text', (c) => c.notNull())
        .addColumn('event_id', 'text')
        .addColumn('event_type', 'text')
        .addColumn('from_state', 'text', (c) => c.notNull())
        .addColumn('to_state', 'text', (c) => c.notNull())
        .addColumn('value', 'bigint')
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('threshold_value', 'bigint', (c) => c.notNull())
        .addColumn('operator', 'text', (c) => c.notNull())
        .addColumn('window_duration', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('alert_rule_history_rule').on('alert_rule_history').columns(['account_id', 'rule_id', 'seq']).execute();
      await db.schema.createIndex('alert_rule_history_at').on('alert_rule_history').columns(['at']).execute();

      for (const table of ['telemetry_seconds', 'telemetry_minutes']) {
        await db.schema
          .createTable(table)
          .addColumn('account_id', 'text', (c) => c.notNull())
          .addColumn('project_key', 'text', (c) => c.notNull())
          .addColumn('second', 'bigint', (c) => c.notNull())
          .addColumn('call', 'integer', (c) => c.notNull())
          .addColumn('call_crash', 'integer', (c) => c.notNull())
          .addColumn('turn', 'integer', (c) => c.notNull())
          .addColumn('api_error', 'integer', (c) => c.notNull())
          .addColumn('function_error', 'integer', (c) => c.notNull())
          .addColumn('latencies', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint(`${table}_pk`, ['account_id', 'project_key', 'second'])
          .execute();
        await db.schema.createIndex(`${table}_second`).on(table).columns(['second']).execute();
      }
      await db.schema
        .createTable('telemetry_rollup_progress')
        .addColumn('shard', 'integer', (c) => c.primaryKey())
        .addColumn('rolled_seq', 'bigint', (c) => c.notNull().defaultTo(0))
        .execute();
      // Batches stored before this migration are not rolled up (they are at most an hour old
      // and the evaluator still has them); rolling starts after them.
      // One statement: shard_sequences has a row for every shard (0010).
      await sql`insert into telemetry_rollup_progress (shard, rolled_seq) select shard, last_seq from shard_sequences`.execute(db);
    },
  };
}
