import type { Kysely } from 'kysely';

/**
 * A project's aggregates are built from its account's stored batches when a rule starts to
 * refer to it: this index reads one account's batches in sequence order without scanning
 * every account's.
 */
export const telemetryByAccountMigration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.createIndex('telemetry_batches_account').on('telemetry_batches').columns(['account_id', 'seq']).execute();
  },
};
