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

/** A claimed delivery with what sending it needs. */
export interface ClaimedDelivery extends Delivery {
  payload: string;
  url: string;
  headers: Record<string, string>;
  timeout_ms: number;
}

/** What the claiming worker has room for; full endpoints and accounts are skipped in the query. */
export interface ClaimRoom {
  forEndpoint(endpointId: string): number;
  forAccount(accountId: string): number;
  fullEndpoints: readonly string[];
  fullAccounts: readonly string[];
}

export type AttemptOutcome =
  | { kind: 'delivered' }
  | { kind: 'retry'; nextAttemptAt: number; error: string }
  | { kind: 'failed'; error: string };

/** Claims that ended without a recorded result (their worker died or stalled past the lease). */
export interface ExpiredClaims {
  /** Due again now, their attempt counted. */
  released: number;
  /** Their last attempt was the one without a result: failed, no more attempts. */
  failed: Delivery[];
}

/** Why a claim without a result ends its delivery, when it was the last attempt. */
export const NO_RESULT_ERROR = 'no result recorded before the claim expired';

export interface DeliveriesRepository {
  /**
   * Claims up to `limit` due deliveries of enabled endpoints, oldest first, at most
   * `room.forEndpoint(endpoint)` per endpoint and `room.forAccount(account)` per account (so
   * neither one endpoint's backlog nor one account's endpoints can take every slot).
   *
   * Claiming counts the attempt (`attempts + 1`: the returned `attempts` is this attempt's
   * number) and holds the delivery `in_flight` until `now + leaseMs` (`locked_until`). So an
   * attempt that kills the process is still counted, and a delivery that does so every time
   * ends failed after its last attempt instead of being retried for ever.
   */
  claimDue(now: number, limit: number, leaseMs: number, room: ClaimRoom): Promise<ClaimedDelivery[]>;
  /**
   * In-flight deliveries whose claim expired (`locked_until` before `now`) without a result
   * come back: due again (the attempt stays counted), or failed with NO_RESULT_ERROR when it
   * was their last attempt. The worker calls it before claiming (at most once per poll
   * interval), with the ids it holds itself (`except`): those attempts are still running.
   */
  expireClaims(now: number, nowIso: string, except?: readonly string[]): Promise<ExpiredClaims>;
  /**
   * Records an attempt and the delivery's new state, in one transaction (shared with the
   * other attempts recorded in the same turn of the event loop); resolves once committed.
   * The attempt was counted when it was claimed; `attempt.attempt` is that number.
   */
  recordAttempt(delivery: ClaimedDelivery, attempt: AttemptRecord, outcome: AttemptOutcome, nowIso: string): Promise<void>;
  /**
   * Puts claimed deliveries back as due now, giving back the attempt their claim counted:
   * none was made, or it was aborted before any answer (shutdown, endpoint withdrawn).
   */
  release(ids: readonly string[], now: number, nowIso: string): Promise<void>;
  /**
   * Start-up of the one server on the database (it holds the server lease, so no other
   * worker can hold a live claim): every claim left in flight by the previous run ends as
   * in expireClaims, whatever its `locked_until`.
   */
  releaseAllInFlight(now: number, nowIso: string): Promise<ExpiredClaims>;
  /**
   * When claimDue may next find work: the earliest next attempt among the pending
   * deliveries of enabled endpoints, or the earliest claim expiry, to know when to wake up.
   */
  nextDueAt(): Promise<number | null>;
  list(accountId: string, endpointId: string, filter: { status?: DeliveryStatus; event_type?: string }, limit: number): Promise<Delivery[]>;
  get(accountId: string, endpointId: string, id: string): Promise<Delivery | undefined>;
  attemptsOf(deliveryIds: readonly string[]): Promise<AttemptRecord[]>;
  /** Makes a delivered or failed delivery due now for one more attempt; false if it is not. */
  retryNow(accountId: string, endpointId: string, id: string, now: number, nowIso: string): Promise<boolean>;
}
