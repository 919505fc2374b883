import { sql, type Kysely } from 'kysely';
import { SHARD_COUNT, shardOf } from '../../domain/shards.js';

/**
 * Several instances on one database (src/cluster/):
 * - `cluster_instances`: one row per running server, renewed by its heartbeat; a row whose
 *   `expires_at` (database time, epoch ms) has passed belongs to a dead instance.
 * - `shard_leases`: one row per shard, its owner and its fencing `epoch` (only ever grows:
 *   every change of owner increments it); `applied_seq` is how far the owner has applied the
 *   shard's telemetry, reported with each renewal (lag, `alerts cluster status`).
 * - `shard_sequences`: one counter per shard. A transaction that stores telemetry takes its
 *   shards' counter rows (an UPDATE), so the shard's sequence numbers are dense and commit in
 *   the order they are given: a reader that has applied n can always read n+1 next.
 * - Rows that belong to an account carry its shard, for the owner's reads.
 * - `webhook_deliveries.locked_by`: the instance whose claim holds a delivery in flight.
 */
export const clusterMigration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('cluster_instances')
      .addColumn('instance_id', 'text', (c) => c.primaryKey())
      .addColumn('pid', 'integer', (c) => c.notNull())
      .addColumn('hostname', 'text', (c) => c.notNull())
      .addColumn('address', 'text')
      .addColumn('started_at', 'text', (c) => c.notNull())
      .addColumn('heartbeat_at', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .addColumn('stopping', 'integer', (c) => c.notNull().defaultTo(0))
      .execute();
    await db.schema
      .createTable('shard_leases')
      .addColumn('shard', 'integer', (c) => c.primaryKey())
      .addColumn('owner', 'text')
      .addColumn('epoch', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('expires_at', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('acquired_at', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('applied_seq', 'bigint', (c) => c.notNull().defaultTo(0))
      .execute();
    await db.schema
      .createTable('shard_sequences')
      .addColumn('shard', 'integer', (c) => c.primaryKey())
      .addColumn('last_seq', 'bigint', (c) => c.notNull().defaultTo(0))
      .execute();

    await db.schema.alterTable('telemetry_batches').addColumn('shard', 'integer', (c) => c.notNull().defaultTo(0)).execute();
    await db.schema.alterTable('telemetry_batches').addColumn('shard_seq', 'bigint', (c) => c.notNull().defaultTo(0)).execute();
    await db.schema.alterTable('telemetry_scopes').addColumn('shard', 'integer', (c) => c.notNull().defaultTo(0)).execute();
    await db.schema.alterTable('alert_rules').addColumn('shard', 'integer', (c) => c.notNull().defaultTo(0)).execute();
    await db.schema.alterTable('webhook_deliveries').addColumn('locked_by', 'text').execute();

    // Existing rows: their shards, and each shard's stored batches numbered in their order.
    const last = new Map<number, number>();
    const batches = await sql<{ seq: number; account_id: string }>`select seq, account_id from telemetry_batches order by seq`.execute(db);
    for (const { seq, account_id } of batches.rows) {
      const shard = shardOf(account_id);
      const shardSeq = (last.get(shard) ?? 0) + 1;
      last.set(shard, shardSeq);
      await sql`update telemetry_batches set shard = ${shard}, shard_seq = ${shardSeq} where seq = ${seq}`.execute(db);
    }
    for (const table of ['telemetry_scopes', 'alert_rules'] as const) {
      const accounts = await sql<{ account_id: string }>`select distinct account_id from ${sql.table(table)}`.execute(db);
      for (const { account_id } of accounts.rows) {
        await sql`update ${sql.table(table)} set shard = ${shardOf(account_id)} where account_id = ${account_id}`.execute(db);
      }
    }
    for (let shard = 0; shard < SHARD_COUNT; shard++) {
      await sql`insert into shard_leases (shard) values (${shard})`.execute(db);
      await sql`insert into shard_sequences (shard, last_seq) values (${shard}, ${last.get(shard) ?? 0})`.execute(db);
    }

    await db.schema.createIndex('telemetry_batches_shard').on('telemetry_batches').columns(['shard', 'shard_seq']).execute();
    await db.schema.createIndex('alert_rules_shard').on('alert_rules').columns(['shard', 'enabled']).execute();
    await db.schema.createIndex('telemetry_scopes_shard').on('telemetry_scopes').columns(['shard', 'project_key']).execute();
    await db.schema.createIndex('webhook_deliveries_in_flight').on('webhook_deliveries').columns(['status', 'locked_by']).execute();
  },
};
