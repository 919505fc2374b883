/**
 * Wake-ups between the processes that share a database (PostgreSQL LISTEN/NOTIFY; within the
 * one process of the SQLite mode, an in-memory emitter). A notification is a hint, never the
 * data: whoever receives one reads the database, and everyone also polls, so a notification
 * lost while a connection was down delays work without losing it.
 */
export const CHANNELS = {
  /** Telemetry committed; payload: the shard number. */
  telemetry: 'alerts_telemetry',
  /** Deliveries became due (new, retried, released); payload: ''. */
  deliveries: 'alerts_deliveries',
  /** Something cached elsewhere changed; payload: JSON `Change`. */
  changes: 'alerts_changes',
  /** A rule was created or changed and wants its owner's evaluation; payload: JSON `RuleRequest`. */
  rules: 'alerts_rules',
  /** An owner has committed the evaluation asked for; payload: the request id. */
  evaluated: 'alerts_evaluated',
  /** Shard ownership moved (an instance joined, left or stopped); payload: ''. */
  shards: 'alerts_shards',
} as const;
export type Channel = (typeof CHANNELS)[keyof typeof CHANNELS];

/** What another process may hold in a cache. */
export type Change =
  /** Without an account: the values of many accounts' rules were flushed (every second). */
  | { kind: 'rules'; account_id?: string }
  | { kind: 'api_keys' }
  | { kind: 'endpoint'; endpoint_id: string }
  /** An account's silences were created or ended. */
  | { kind: 'silences'; account_id: string };

export interface RuleRequest {
  request_id: string;
  account_id: string;
  rule_id: string;
}

export interface Notifications {
  /** A random id of this process's notifications: payloads that carry it came from here. */
  readonly origin: string;
  /** Calls `handler` with each payload sent on the channel by any process, this one included. */
  listen(channel: Channel, handler: (payload: string) => void): void;
  /** Sends now (outside any transaction). Never throws: a lost hint is covered by polling. */
  notify(channel: Channel, payload: string): Promise<void>;
  /**
   * False while notifications may be missed (the listening connection is down or
   * reconnecting): caches must not be trusted then. Every (re)connection calls the
   * `onResync` handlers, since anything may have changed while it was down.
   */
  readonly live: boolean;
  onResync(handler: () => void): void;
  /** Starts listening (resolves once listening); idempotent. */
  start(): Promise<void>;
  close(): Promise<void>;
}
