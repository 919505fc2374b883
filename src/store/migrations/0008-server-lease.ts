import { sql, type Kysely } from 'kysely';

/**
 * At most one row: the server that may evaluate rules and send webhooks on this database,
 * until `expires_at` (epoch ms) unless it renews its lease. See src/server-lease.ts.
 */
export const serverLeaseMigration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('server_lease')
      .addColumn('id', 'integer', (c) => c.primaryKey().check(sql`id = 1`))
      .addColumn('instance_id', 'text', (c) => c.notNull())
      .addColumn('pid', 'integer', (c) => c.notNull())
      .addColumn('hostname', 'text', (c) => c.notNull())
      .addColumn('started_at', 'text', (c) => c.notNull())
      .addColumn('heartbeat_at', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .execute();
  },
};
