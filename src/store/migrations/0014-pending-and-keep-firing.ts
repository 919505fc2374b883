import { sql, type Kysely } from 'kysely';

/**
 * Pending and keep-firing periods of rules (issue 13): `pending_duration` (the condition must
 * hold this long before `alert`) and `keep_firing_duration` (it must be clear this long before
 * leaving `alert`), `0s` for every existing rule (the published behaviour); and the rule's
 * position in them, saved with its evaluation so that a restart or a new owner carries on:
 * `pending_since` (the condition holds since, the rule not yet in alert) and
 * `keep_firing_since` (the condition is clear since, the rule kept in alert).
 */
export const pendingAndKeepFiringMigration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('alert_rules').addColumn('pending_duration', 'text', (c) => c.notNull().defaultTo(sql.lit('0s'))).execute();
    await db.schema.alterTable('alert_rules').addColumn('keep_firing_duration', 'text', (c) => c.notNull().defaultTo(sql.lit('0s'))).execute();
    await db.schema.alterTable('alert_rules').addColumn('pending_since', 'text').execute();
    await db.schema.alterTable('alert_rules').addColumn('keep_firing_since', 'text').execute();
  },
};
