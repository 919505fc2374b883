import type { Migration, MigrationProvider } from 'kysely';
import type { MigrationDialect } from '../dialect/adapter.js';
import { initialMigration } from './0001-initial.js';
import { telemetryAndOutboxMigration } from './0002-telemetry-and-outbox.js';
import { webhookDeliveriesMigration } from './0003-webhook-deliveries.js';
import { deliveryClaimOrderMigration } from './0004-delivery-claim-order.js';
import { healthProbeMigration } from './0005-health-probe.js';
import { retentionIndexesMigration } from './0006-retention-indexes.js';
import { telemetryByAccountMigration } from './0007-telemetry-by-account.js';
import { serverLeaseMigration } from './0008-server-lease.js';
import { telemetryIdempotencyMigration } from './0009-telemetry-idempotency.js';
import { clusterMigration } from './0010-cluster.js';
import { historyAndRollupsMigration } from './0011-history-and-rollups.js';
import { streamIndexMigration } from './0012-stream-index.js';
import { alertingControlsMigration } from './0013-alerting-controls.js';
import { pendingAndKeepFiringMigration } from './0014-pending-and-keep-firing.js';

/** Every schema version in order; names sort in the order they must run. */
export function migrationProvider(dialect: MigrationDialect): MigrationProvider {
  return {
    async getMigrations(): Promise<Record<string, Migration>> {
      return {
        '0001-initial': initialMigration(dialect),
        '0002-telemetry-and-outbox': telemetryAndOutboxMigration(dialect),
        '0003-webhook-deliveries': webhookDeliveriesMigration(dialect),
        '0004-delivery-claim-order': deliveryClaimOrderMigration,
        '0005-health-probe': healthProbeMigration,
        '0006-retention-indexes': retentionIndexesMigration,
        '0007-telemetry-by-account': telemetryByAccountMigration,
        '0008-server-lease': serverLeaseMigration,
        '0009-telemetry-idempotency': telemetryIdempotencyMigration,
        '0010-cluster': clusterMigration,
        '0011-history-and-rollups': historyAndRollupsMigration(dialect),
        '0012-stream-index': streamIndexMigration,
        '0013-alerting-controls': alertingControlsMigration(dialect),
        '0014-pending-and-keep-firing': pendingAndKeepFiringMigration,
      };
    },
  };
}
