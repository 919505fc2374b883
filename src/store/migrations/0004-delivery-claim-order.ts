import type { Kysely } from 'kysely';

/**
 * Claims take due deliveries in (next_attempt_at, seq) order: with seq in the index the
 * oldest are read straight from it instead of sorting every due delivery on each claim.
 */
export const deliveryClaimOrderMigration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.dropIndex('webhook_deliveries_due').execute();
    await db.schema
      .createIndex('webhook_deliveries_due')
      .on('webhook_deliveries')
      .columns(['status', 'next_attempt_at', 'seq'])
      .execute();
  },
};
