import type { ColumnType, Generated } from 'kysely';

/**
 * Table shapes as the database holds them. Types are kept portable between SQLite and
 * PostgreSQL: timestamps are ISO-8601 UTC text, booleans are 0/1 integers, small
 * collections are JSON text.
 */
export interface AccountsTable {
  id: string;
  name: string;
  created_at: string;
}

export interface ApiKeysTable {
  id: string;
  account_id: string;
  key_hash: string;
  prefix: string;
  created_at: string;
  revoked_at: string | null;
}

export interface AlertRulesTable {
  id: string;
  account_id: string;
  name: string;
  project_id: string | null;
  metric: string;
  operator: string;
  threshold_value: number;
  window_duration: string;
  enabled: number;
  current_state: string;
  since: string | null;
  last_evaluated_at: string | null;
  current_value: number | null;
  created_at: string;
  updated_at: string;
  seq: Generated<number>;
  /** shardOf(account_id): the rule is evaluated by that shard's owner. */
  shard: number;
  /** Migration 0014: '0s' unless set; the rule's position in them, ISO or null. */
  pending_duration: ColumnType<string, string | undefined, string>;
  keep_firing_duration: ColumnType<string, string | undefined, string>;
  pending_since: ColumnType<string | null, string | null | undefined, string | null>;
  keep_firing_since: ColumnType<string | null, string | null | undefined, string | null>;
}

export interface WebhookEndpointsTable {
  id: string;
  account_id: string;
  name: string;
  url: string;
  enabled: number;
  event_types: string;
  headers: string;
  timeout_ms: number;
  signing_secret: string;
  created_at: string;
  updated_at: string;
  seq: Generated<number>;
  /** The secret before the last rotation with overlap, signing too until the expiry (migration 0013). */
  previous_signing_secret: ColumnType<string | null, string | null | undefined, string | null>;
  /** Epoch ms. */
  previous_secret_expires_at: ColumnType<number | null, number | null | undefined, number | null>;
  /** Why the service disabled the endpoint itself; null when it did not. */
  disabled_reason: ColumnType<string | null, string | null | undefined, string | null>;
  disabled_at: ColumnType<string | null, string | null | undefined, string | null>;
  /** Epoch ms of the first failed attempt since the last success; null while it succeeds. */
  failing_since: ColumnType<number | null, number | null | undefined, number | null>;
}

export interface TelemetryBatchesTable {
  seq: Generated<number>;
  account_id: string;
  received_at: number;
  deltas: string;
  /** shardOf(account_id). */
  shard: number;
  /** The batch's number within its shard: dense, in commit order (see shard_sequences). */
  shard_seq: number;
}

/** project_key is the project id, or '' for the account as a whole. */
export interface TelemetryScopesTable {
  account_id: string;
  project_key: string;
  last_seen_at: number;
  shard: number;
}

export interface AlertEventsTable {
  seq: Generated<number>;
  id: string;
  account_id: string;
  rule_id: string;
  event_type: string;
  /** The exact JSON body delivered for the event, byte for byte on every attempt. */
  payload: string;
  created_at: string;
}

export interface WebhookDeliveriesTable {
  seq: Generated<number>;
  id: string;
  account_id: string;
  endpoint_id: string;
  event_id: string;
  event_type: string;
  /** pending | in_flight | delivered | failed | cancelled */
  status: string;
  attempts: number;
  max_attempts: number;
  /** Epoch ms; null once no attempt is due. */
  next_attempt_at: number | null;
  /** Epoch ms until which a worker holds the claim (in_flight); an expired claim is taken again. */
  locked_until: number | null;
  /** The instance whose claim holds the delivery in flight (cluster_instances.instance_id). */
  locked_by: string | null;
  last_error: string | null;
  created_at: string;
  updated_at: string;
}

export interface WebhookAttemptsTable {
  seq: Generated<number>;
  delivery_id: string;
  attempt: number;
  started_at: string;
  duration_ms: number;
  status_code: number | null;
  error_class: string | null;
  error: string | null;
  response_body: string | null;
}

/** The one server allowed to run on the database (at most one row, id 1). */
export interface ServerLeaseTable {
  id: number;
  instance_id: string;
  pid: number;
  hostname: string;
  started_at: string;
  /** Epoch ms of the last renewal. */
  heartbeat_at: number;
  /** Epoch ms after which another server may take over. */
  expires_at: number;
}

/** A telemetry batch's idempotency key, kept 24 hours. */
export interface TelemetryIdempotencyKeysTable {
  account_id: string;
  key: string;
  /** Hex SHA-256 of the batch as received. */
  body_sha256: string;
  /** Events the batch held: the answer to a replay. */
  accepted: number;
  /** Epoch ms. */
  created_at: number;
}

/** A running server (src/cluster/): renewed by its heartbeat, dead once `expires_at` passed. */
export interface ClusterInstancesTable {
  instance_id: string;
  pid: number;
  hostname: string;
  /** Where its HTTP API listens, as it was told (for operators). */
  address: string | null;
  started_at: string;
  /** Database time, epoch ms. */
  heartbeat_at: number;
  expires_at: number;
  /** 1 while it shuts down: it takes no shards and gives its own up. */
  stopping: number;
}

/** One row per shard: its owner until `expires_at` (database time), under a fencing epoch. */
export interface ShardLeasesTable {
  shard: number;
  owner: string | null;
  /** Incremented on every change of owner: writes carry the epoch they were made under. */
  epoch: number;
  expires_at: number;
  acquired_at: number;
  /** The highest shard_seq its owner has applied (reported with each renewal). */
  applied_seq: number;
}

/** The last telemetry sequence number given in each shard. */
export interface ShardSequencesTable {
  shard: number;
  last_seq: number;
}

/** One state transition of a rule, with the rule's condition at that moment (migration 0011). */
export interface AlertRuleHistoryTable {
  seq: Generated<number>;
  account_id: string;
  rule_id: string;
  /** The event the transition emitted; null for transitions that send nothing. */
  event_id: string | null;
  event_type: string | null;
  from_state: string;
  to_state: string;
  value: number | null;
  /** ISO-8601 UTC with milliseconds. */
  at: string;
  threshold_value: number;
  operator: string;
  window_duration: string;
  /** The silence that held the transition's event back (migration 0013). */
  silence_id: ColumnType<string | null, string | null | undefined, string | null>;
}

/** A silence: while it matches a rule, the rule's events get no deliveries (migration 0013). */
export interface SilencesTable {
  seq: Generated<number>;
  id: string;
  account_id: string;
  rule_id: string | null;
  project_id: string | null;
  metric: string | null;
  /** ISO-8601 UTC with milliseconds. */
  starts_at: string;
  ends_at: string;
  comment: string;
  created_at: string;
}

/**
 * Telemetry of one scope (project_key '' = the account as a whole) per second, or per minute
 * (`second` is then the last second the row covers, a multiple of 60: it holds (second - 60,
 * second]). `latencies` is [bin, count, ...] JSON, bins in ascending order.
 */
export interface TelemetryRollupTable {
  account_id: string;
  project_key: string;
  second: number;
  call: number;
  call_crash: number;
  turn: number;
  api_error: number;
  function_error: number;
  latencies: string;
}

/** Per shard: the highest shard_seq folded into telemetry_seconds and telemetry_minutes. */
export interface TelemetryRollupProgressTable {
  shard: number;
  rolled_seq: number;
}

export interface Database {
  alert_rule_history: AlertRuleHistoryTable;
  silences: SilencesTable;
  telemetry_seconds: TelemetryRollupTable;
  telemetry_minutes: TelemetryRollupTable;
  telemetry_rollup_progress: TelemetryRollupProgressTable;
  cluster_instances: ClusterInstancesTable;
  shard_leases: ShardLeasesTable;
  shard_sequences: ShardSequencesTable;
  webhook_deliveries: WebhookDeliveriesTable;
  webhook_attempts: WebhookAttemptsTable;
  telemetry_batches: TelemetryBatchesTable;
  telemetry_scopes: TelemetryScopesTable;
  alert_events: AlertEventsTable;
  accounts: AccountsTable;
  api_keys: ApiKeysTable;
  alert_rules: AlertRulesTable;
  webhook_endpoints: WebhookEndpointsTable;
  server_lease: ServerLeaseTable;
  telemetry_idempotency_keys: TelemetryIdempotencyKeysTable;
}
