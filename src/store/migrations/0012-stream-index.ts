import type { Kysely } from 'kysely';

/**
 * The live stream (GET /v1/stream) reads an account's newest transitions, of all its rules,
 * after a seq, twice a second per open stream: this index makes that one short range read
 * instead of a walk over every transition the account kept (30 days of them by default).
 */
export const streamIndexMigration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.createIndex('alert_rule_history_account_seq').on('alert_rule_history').columns(['account_id', 'seq']).execute();
  },
};
