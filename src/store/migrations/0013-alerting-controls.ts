import type { Kysely } from 'kysely';
import type { MigrationDialect } from '../dialect/adapter.js';

/**
 * Alerting controls beyond the published contract (issue 13):
 * - `webhook_endpoints.previous_signing_secret` / `previous_secret_expires_at` (epoch ms): a
 *   rotation with overlap keeps the previous secret signing (Standard Webhooks signatures carry
 *   both) until then; sealed like `signing_secret` when a secret key is configured.
 * - `webhook_endpoints.disabled_reason` / `disabled_at`: why and when the service disabled an
 *   endpoint itself (all its deliveries failed for ALERTS_ENDPOINT_DISABLE_AFTER);
 *   `failing_since` (epoch ms): the first failed attempt since its last success, null while it
 *   succeeds.
 * - `silences`: matchers (rule, project, metric; all given must match) and a time range; while
 *   one matches, rules change state as usual but their events get no deliveries.
 * - `alert_rule_history.silence_id`: the silence that held a transition's event back.
 */
export function alertingControlsMigration(dialect: MigrationDialect) {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable('webhook_endpoints').addColumn('previous_signing_secret', 'text').execute();
      await db.schema.alterTable('webhook_endpoints').addColumn('previous_secret_expires_at', 'bigint').execute();
      await db.schema.alterTable('webhook_endpoints').addColumn('disabled_reason', 'text').execute();
      await db.schema.alterTable('webhook_endpoints').addColumn('disabled_at', 'text').execute();
      await db.schema.alterTable('webhook_endpoints').addColumn('failing_since', 'bigint').execute();
      await db.schema.alterTable('alert_rule_history').addColumn('silence_id', 'text').execute();
      await db.schema
        .createTable('silences')
        .addColumn('seq', dialect.autoIncrementType, (c) => dialect.autoIncrement(c))
        .addColumn('id', 'text', (c) => c.notNull().unique())
        .addColumn('account_id', 'text', (c) => c.notNull())
        .addColumn('rule_id', 'text')
        .addColumn('project_id', 'text')
        .addColumn('metric', 'text')
        .addColumn('starts_at', 'text', (c) => c.notNull())
        .addColumn('ends_at', 'text', (c) => c.notNull())
        .addColumn('comment', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('silences_account_ends').on('silences').columns(['account_id', 'ends_at']).execute();
    },
  };
}
