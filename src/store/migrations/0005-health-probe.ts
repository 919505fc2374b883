import type { Kysely } from 'kysely';

/**
 * A table that stays empty: while writes are failing, the health check writes a row of a few
 * pages into it and deletes it again in one committed transaction, to learn whether the
 * database can take writes again (see Store.checkWritable).
 */
export const healthProbeMigration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('health_probe')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('filler', 'text', (c) => c.notNull())
      .execute();
  },
};
