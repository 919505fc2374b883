import type { Kysely } from 'kysely';
import type { MigrationDialect } from '../dialect/adapter.js';

/** Durable telemetry (per-batch aggregate deltas), scope liveness, and the alert event outbox. */
export function telemetryAndOutboxMigration(dialect: MigrationDialect) {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('telemetry_batches')
        .addColumn('seq', dialect.autoIncrementType, (c) => dialect.autoIncrement(c))
        .addColumn('account_id', 'text', (c) => c.notNull())
        .addColumn('received_at', 'bigint', (c) => c.notNull())
        .addColumn('deltas', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('telemetry_batches_received').on('telemetry_batches').column('received_at').execute();

      await db.schema
        .createTable('telemetry_scopes')
        .addColumn('account_id', 'text', (c) => c.notNull())
        .addColumn('project_key', 'text', (c) => c.notNull())
        .addColumn('last_seen_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('telemetry_scopes_pk', ['account_id', 'project_key'])
        .execute();

      await db.schema
        .createTable('alert_events')
        .addColumn('seq', dialect.autoIncrementType, (c) => dialect.autoIncrement(c))
        .addColumn('id', 'text', (c) => c.notNull().unique())
        .addColumn('account_id', 'text', (c) => c.notNull())
        .addColumn('rule_id', 'text', (c) => c.notNull())
        .addColumn('event_type', 'text', (c) => c.notNull())
        .addColumn('payload', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('alert_events_account').on('alert_events').columns(['account_id', 'seq']).execute();
    },
  };
}
