import type { Kysely } from 'kysely';

/**
 * Idempotency keys of telemetry batches: a batch sent again with the same key (a sender
 * retrying after a timeout) is answered from here instead of being counted twice. Written
 * in the transaction that stores the batch; kept 24 hours.
 */
export const telemetryIdempotencyMigration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('telemetry_idempotency_keys')
      .addColumn('account_id', 'text', (c) => c.notNull())
      .addColumn('key', 'text', (c) => c.notNull())
      .addColumn('body_sha256', 'text', (c) => c.notNull())
      .addColumn('accepted', 'integer', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('telemetry_idempotency_keys_pk', ['account_id', 'key'])
      .execute();
    await db.schema.createIndex('telemetry_idempotency_keys_created').on('telemetry_idempotency_keys').column('created_at').execute();
  },
};
