export const DELIVERY_STATUSES = ['pending', 'in_flight', 'delivered', 'failed', 'cancelled'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

export interface Delivery {
  id: string;
  account_id: string;
  endpoint_id: string;
  event_id: string;
  event_type: string;
  status: DeliveryStatus;
  attempts: number;
  max_attempts: number;
  next_attempt_at: number | null;
  last_error: string | null;
  created_at: string;
  updated_at: string;
}

export interface AttemptRecord {
  delivery_id: string;
  attempt: number;
  started_at: string;
  duration_ms: number;
  status_code: number | null;
  error_class: string | null;
  error: string | null;
  response_body: string | null;
}

/** A recorded attempt with its delivery's endpoint and event: what the live stream sends. */
export interface AccountAttempt extends AttemptRecord {
  /** Grows with every attempt recorded; orders the stream. */
  seq: number;
  endpoint_id: string;
  event_id: string;
  event_type: string;
}

/**
 * A claimed delivery with what sending it needs. The claim is its owner (`locked_by`) and its
 * attempt number (`attempts`): the delivery's later changes are made under both.
 */
export interface ClaimedDelivery extends Delivery {
  /** The instance holding the claim (cluster_instances.instance_id). */
  locked_by: string;
  payload: string;
  url: string;
  headers: Record<string, string>;
  timeout_ms: number;
}

/**
 * What a claim may take. The worker says what it has room for itself (its own slots: full
 * endpoints and accounts are skipped in the query) and the configured limits, which hold
 * across every instance claiming from the database: the repository counts the claims in
 * flight there (of every live owner) and takes no more than what is left of each limit.
 */
export interface ClaimRoom {
  forEndpoint(endpointId: string): number;
  forAccount(accountId: string): number;
  fullEndpoints: readonly string[];
  fullAccounts: readonly string[];
  limits: {
    /** Deliveries in flight at once to one endpoint, over all instances. */
    perEndpoint: number;
    /** Deliveries in flight at once of one account, over all instances; none when undefined. */
    perAccount?: number | undefined;
  };
}

export type AttemptOutcome =
  | { kind: 'delivered' }
  | { kind: 'retry'; nextAttemptAt: number; error: string }
  | { kind: 'failed'; error: string };

/** What recording an attempt tells the worker about its endpoint, once committed. */
export interface RecordedAttempt {
  /**
   * Epoch ms of the endpoint's first failed attempt since its last success (null while it
   * succeeds), as this transaction left it: whether it now fails for too long.
   */
  endpointFailingSince: number | null;
}

/** Claims reaped: they ended without a recorded result (their instance died, or stalled past the lease). */
export interface ReapedClaims {
  /** Due again now, their attempt counted. */
  released: number;
  /** Their last attempt was the one without a result: failed, no more attempts. */
  failed: Delivery[];
}

/** Why a claim without a result ends its delivery, when it was the last attempt. */
export const NO_RESULT_ERROR = 'no result recorded before the claim expired';

/**
 * The deliveries queue, shared by every instance on the database (the graphile-worker model).
 *
 * Invariants:
 * - A claim has an owner: claimDue sets `status = 'in_flight'`, `locked_by = owner`,
 *   `locked_until = now + leaseMs` and counts the attempt (`attempts + 1`) in one transaction.
 * - Every later change of a claimed delivery by its claimer (recordAttempt, release) is made
 *   only while the claim is still its own: `status = 'in_flight'` and `locked_by = owner`
 *   (recordAttempt also `attempts` = the claim's attempt). A claimer whose claim was reaped
 *   (and perhaps claimed again by another instance) changes nothing: the newer state stands.
 * - A claim is reaped (reapExpired, by any live instance) when its lease passed
 *   (`locked_until < now`) or when its owner is not a live instance (no cluster_instances row
 *   whose `expires_at` is after the database's clock). The instance that reaps knows itself
 *   alive: its own claims come back only by their lease, and never those it still holds.
 * - Concurrency limits per endpoint and per account hold across instances: claims count the
 *   deliveries in flight under live claims of every owner, and concurrent claims are
 *   serialized (PostgreSQL: an advisory lock; SQLite: every transaction holds the write lock).
 */
export interface DeliveriesRepository {
  /**
   * Claims for `owner` up to `limit` due deliveries of enabled endpoints, oldest first, at
   * most `room.forEndpoint(endpoint)` per endpoint and `room.forAccount(account)` per account,
   * and never more than what the configured `room.limits` leave beside the deliveries in
   * flight under live claims of any instance (so neither one endpoint's backlog nor one
   * account's endpoints can take every slot, on one instance or on all of them).
   *
   * Claiming counts the attempt (`attempts + 1`: the returned `attempts` is this attempt's
   * number) and holds the delivery `in_flight` for `owner` until `now + leaseMs`
   * (`locked_until`). So an attempt that kills the process is still counted, and a delivery
   * that does so every time ends failed after its last attempt instead of being retried for
   * ever. On PostgreSQL the candidates are locked `for update skip locked`.
   */
  claimDue(owner: string, now: number, limit: number, leaseMs: number, room: ClaimRoom): Promise<ClaimedDelivery[]>;
  /**
   * Ends the claims of others that ended without a result: in flight with their lease past
   * (`locked_until < now`), or owned by an instance that is not live (its cluster_instances
   * row is gone or its `expires_at` passed, by the database's clock). `owner` is the reaper:
   * its own claims come back only by their lease, and never those in `held` (attempts it is
   * still running). Each comes back due now (the attempt stays counted: it may be the one
   * that killed the process), or failed with NO_RESULT_ERROR when it was its last attempt.
   * Instances are woken (CHANNELS.deliveries) when any came back due. Any live instance runs
   * it: at start and about once per poll interval.
   */
  reapExpired(owner: string, now: number, nowIso: string, held?: readonly string[]): Promise<ReapedClaims>;
  /**
   * Records an attempt and the delivery's new state, in one transaction (shared with the
   * other attempts recorded in the same turn of the event loop); resolves once committed.
   * The attempt was counted when it was claimed; `attempt.attempt` is that number.
   *
   * The new state is written only while the claim is still this one (`status = 'in_flight'`,
   * `locked_by = delivery.locked_by`, `attempts = delivery.attempts`): a claim reaped
   * meanwhile (and perhaps taken again) keeps the state it has now, and a cancelled delivery
   * stays cancelled. The attempt row itself is always inserted: the receiver saw it, and it
   * carries its own number, so the history is true and numbers never repeat.
   *
   * In the same transaction, under the same claim, the endpoint's `failing_since`: cleared by
   * a success (or moved to the first failure after it, in the same batch), set by a failure
   * when it was clear. The answer carries it as committed.
   */
  recordAttempt(delivery: ClaimedDelivery, attempt: AttemptRecord, outcome: AttemptOutcome, nowIso: string): Promise<RecordedAttempt>;
  /**
   * Disables an endpoint whose attempts have all failed since `failingSince` (the service
   * decided it is too long), naming `reason`, and cancels its unfinished deliveries (their
   * last_error names it too), in one transaction. Only while the endpoint is still enabled
   * and still failing since exactly that time: of several instances that saw it cross the
   * limit one disables it, and never one that succeeded meanwhile. True when this call did.
   */
  disableFailingEndpoint(endpointId: string, failingSince: number, reason: string, nowIso: string): Promise<boolean>;
  /**
   * Puts deliveries claimed by `owner` back as due now, giving back the attempt their claim
   * counted: none was made, or it was aborted before any answer (shutdown, endpoint
   * withdrawn). Deliveries no longer in flight under `owner`'s claim are left alone. Wakes
   * the instances (CHANNELS.deliveries).
   */
  release(owner: string, ids: readonly string[], now: number, nowIso: string): Promise<void>;
  /**
   * When claimDue may next find work: the earliest next attempt among the pending
   * deliveries of enabled endpoints, or the earliest claim expiry, to know when to wake up.
   */
  nextDueAt(): Promise<number | null>;
  list(accountId: string, endpointId: string, filter: { status?: DeliveryStatus; event_type?: string }, limit: number): Promise<Delivery[]>;
  get(accountId: string, endpointId: string, id: string): Promise<Delivery | undefined>;
  attemptsOf(deliveryIds: readonly string[]): Promise<AttemptRecord[]>;
  /** An account's attempts recorded after `afterSeq`, oldest first, at most `limit`. */
  attemptsAfter(accountId: string, afterSeq: number, limit: number): Promise<AccountAttempt[]>;
  /** The highest attempt seq recorded (0 when none). */
  lastAttemptSeq(): Promise<number>;
  /** Deliveries waiting or in flight, and when the oldest was created (epoch ms). */
  queueStats(): Promise<{ depth: number; oldestCreatedAt: number | null }>;
  /**
   * Makes a delivered or failed delivery due now for one more attempt; false if it is not.
   * Wakes the instances (CHANNELS.deliveries).
   */
  retryNow(accountId: string, endpointId: string, id: string, now: number, nowIso: string): Promise<boolean>;
}
