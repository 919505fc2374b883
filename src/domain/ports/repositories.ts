import type { RetentionStore } from '../retention.js';
import type { AccountsRepository, ApiKeysRepository } from './accounts-repository.js';
import type { AlertEventsRepository } from './alert-events-repository.js';
import type { AlertRulesRepository } from './alert-rules-repository.js';
import type { ClusterRepository } from './cluster-repository.js';
import type { DeliveriesRepository } from './deliveries-repository.js';
import type { RuleHistoryRepository } from './rule-history-repository.js';
import type { ServerLeaseRepository } from './server-lease-repository.js';
import type { SilencesRepository } from './silences-repository.js';
import type { TelemetryHistoryRepository } from './telemetry-history.js';
import type { TelemetryRepository } from './telemetry-repository.js';
import type { TelemetryRollupRepository } from './telemetry-rollup-repository.js';
import type { WebhookEndpointsRepository } from './webhook-endpoints-repository.js';

/** Every repository the domain, the engine and the delivery worker use; the store provides them. */
export interface Repositories {
  readonly accounts: AccountsRepository;
  readonly apiKeys: ApiKeysRepository;
  readonly alertRules: AlertRulesRepository;
  /** The state transitions of rules (written by alertRules.saveEvaluation). */
  readonly ruleHistory: RuleHistoryRepository;
  readonly webhookEndpoints: WebhookEndpointsRepository;
  /** Silences (ours); alertRules.saveEvaluation reads them in its own transaction. */
  readonly silences: SilencesRepository;
  readonly telemetry: TelemetryRepository;
  /** Stored batches rolled up per second and per minute, exactly once (see src/engine/telemetry-rollup.ts). */
  readonly telemetryRollups: TelemetryRollupRepository;
  /** A scope's stored telemetry over a range (roll-ups and batches not yet rolled up), for series and previews. */
  readonly telemetryHistory: TelemetryHistoryRepository;
  readonly alertEvents: AlertEventsRepository;
  readonly deliveries: DeliveriesRepository;
  /** Instances and their shard leases (see src/cluster/). */
  readonly cluster: ClusterRepository;
  /** Which server runs on a SQLite database (see src/server-lease.ts). */
  readonly serverLease: ServerLeaseRepository;
  /** Deletes webhook deliveries, attempts, alert events, rule history and ended silences past their retention. */
  readonly retention: RetentionStore;
}
