import type { Kysely } from 'kysely';

/**
 * Retention deletes finished deliveries and alert events older than a cut-off, in small
 * batches: these indexes find each batch directly (finished deliveries by status and age,
 * events by age) instead of scanning and sorting the tables.
 */
export const retentionIndexesMigration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.createIndex('webhook_deliveries_finished').on('webhook_deliveries').columns(['status', 'created_at']).execute();
    await db.schema.createIndex('alert_events_created').on('alert_events').column('created_at').execute();
  },
};
