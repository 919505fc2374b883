import type { Metrics } from '../metrics/metrics.js';
import type { Logger } from 'pino';
import { toIso, type Clock } from '../domain/clock.js';
import { autoDisableReason, failingTooLong } from '../domain/endpoint-health.js';
import type { ClaimedDelivery, Delivery, ReapedClaims } from '../domain/ports/deliveries-repository.js';
import { CHANNELS, type Notifications } from '../domain/ports/notifications.js';
import type { Repositories } from '../domain/ports/repositories.js';
import type { AttemptResult, WebhookClient } from '../domain/ports/webhook-client.js';
import { secretsSigningAt, webhookHeaders } from '../domain/webhook-headers.js';
import { outcomeOf } from './retry-policy.js';
import { DeliverySlots } from './slots.js';

export interface DeliveryWorker {
  /**
   * Reaps the claims that ended without a result (of dead instances, such as this one's
   * predecessor, or past their lease: see DeliveriesRepository.reapExpired), listens for
   * deliveries becoming due, then starts delivering.
   */
  start(): Promise<void>;
  /** Stops claiming, lets in-flight attempts finish (or aborts and releases them), waits. */
  stop(): Promise<void>;
  /** New deliveries were committed: look for due work now instead of at the next poll. */
  kick(): void;
  /**
   * The endpoint was deleted or disabled: its attempts in flight are aborted and its claimed
   * deliveries released (a deleted endpoint's stay cancelled; a disabled one's wait, pending).
   */
  endpointWithdrawn(endpointId: string): void;
  /** Claims and sends everything due now, and waits for those attempts (tests, tools). */
  drain(): Promise<void>;
  /** Started and not stopping (GET /readyz). */
  running(): boolean;
}

export interface DeliveryWorkerDeps {
  store: Repositories;
  /**
   * This process's instance id (its cluster_instances row, renewed by its heartbeat): the
   * owner of its claims. Unique per process start. Other instances reap the claims of an id
   * whose row is missing or expired, so it must be the id the heartbeat renews.
   */
  instanceId: string;
  /** Wake-ups from other processes (CHANNELS.deliveries); without it, polling alone. */
  notifications?: Notifications | undefined;
  clock: Clock;
  logger: Logger;
  client: WebhookClient;
  /** Delay before each attempt, from the previous failure; its length is the attempt count. */
  retrySchedule: readonly number[];
  concurrency: number;
  perEndpointConcurrency: number;
  /** Deliveries one account may hold at once over all its endpoints; default: all of them. */
  perAccountConcurrency?: number;
  /** Longest sleep between looks for due work. */
  pollIntervalMs: number;
  /** How long in-flight attempts may run on after stop() before they are aborted and released. */
  stopGraceMs: number;
  /** false in tests that call drain() themselves. */
  autoStart?: boolean;
  /** Attempts by outcome and their durations, endpoints disabled (GET /metrics). */
  metrics?: Pick<Metrics, 'webhookAttempts' | 'webhookAttemptSeconds' | 'endpointsDisabled'> | undefined;
  /**
   * ALERTS_ENDPOINT_DISABLE_AFTER: an endpoint whose attempts have all failed for this long
   * is disabled (ms); null or absent: never.
   */
  disableEndpointAfterMs?: number | null | undefined;
}

/** An attempt's outcome as /metrics counts it: delivered, rejected (a non-2xx answer) or why there was no answer. */
function metricOutcome(result: AttemptResult): string {
  if (result.statusCode !== null) return result.statusCode >= 200 && result.statusCode < 300 ? 'delivered' : 'rejected';
  return result.errorClass ?? 'network';
}

// How long a claim holds a delivery (its locked_until). Longer than the largest endpoint
// timeout (30 s): an attempt always ends by its timeout (the client guarantees it), so a
// live attempt never loses its claim. It is the backstop: a claim of a dead instance comes
// back as soon as its instance's row expires (reapExpired, run by every live instance each
// poll interval); one that outlives its lease without a result (a worker that stalled) comes
// back then, its attempt counted.
const LEASE_MS = 120_000;

/**
 * Claims due deliveries from the database and sends them, bounded globally, per endpoint
 * and per account (DeliverySlots), so a slow endpoint, or an account of slow endpoints,
 * only ever ties up its own slots. Every attempt is recorded with the delivery's new state
 * in one transaction.
 *
 * Several instances may run one each on the same database: claims are owned by this
 * instance (`instanceId`), only it records or releases them, the per-endpoint and
 * per-account limits hold over all instances together (claimDue counts every live claim),
 * and each instance reaps the claims of dead ones.
 */
export function createDeliveryWorker(deps: DeliveryWorkerDeps): DeliveryWorker {
  const { store, clock, logger, client, retrySchedule, instanceId: owner } = deps;
  const slots = new DeliverySlots({
    total: deps.concurrency,
    perEndpoint: deps.perEndpointConcurrency,
    perAccount: deps.perAccountConcurrency ?? deps.concurrency,
    clusterPerAccount: deps.perAccountConcurrency,
  });
  /** Attempts being sent, by delivery id, with what aborts each. */
  const inFlight = new Map<string, { delivery: ClaimedDelivery; abort: AbortController }>();
  const sending = new Set<Promise<void>>();
  let stopping = false;
  let started = false;
  let timer: NodeJS.Timeout | undefined;
  let filling: Promise<void> | undefined;
  let fillAgain = false;
  let lastReap = -Infinity;
  let listening = false;

  function schedule(delayMs: number): void {
    if (stopping || deps.autoStart === false) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      void fill();
    }, Math.max(0, delayMs));
    timer.unref();
  }

  /**
   * Brings back the claims that ended without a result (any instance's, this one's only by
   * their lease and never those it holds); the failed ones are final outcomes.
   */
  async function reap(now: number): Promise<void> {
    lastReap = now;
    const held = [...inFlight.keys(), ...slots.queuedIds()];
    const reaped: ReapedClaims = await store.deliveries.reapExpired(owner, now, toIso(now), held);
    if (reaped.released > 0) logger.warn({ released: reaped.released }, 'webhook deliveries whose claim ended without a result are due again');
    for (const delivery of reaped.failed) logOutcome(delivery, 'failed', delivery.last_error);
  }

  function logOutcome(delivery: Delivery, outcome: 'delivered' | 'failed', error: string | null): void {
    logger.info(
      { delivery_id: delivery.id, endpoint_id: delivery.endpoint_id, account_id: delivery.account_id, event_id: delivery.event_id, outcome, attempts: delivery.attempts, error },
      outcome === 'delivered' ? 'webhook delivered' : 'webhook delivery failed',
    );
  }

  async function send(delivery: ClaimedDelivery, signal: AbortSignal): Promise<void> {
    // Counted when it was claimed: this attempt's number.
    const attempt = delivery.attempts;
    try {
      const secrets = await store.webhookEndpoints.signingSecrets(delivery.endpoint_id);
      if (secrets === undefined) return; // endpoint deleted meanwhile: its deliveries were cancelled
      const startedAt = clock.now();
      const timestamp = Math.floor(startedAt / 1000);
      const result = await client.send(
        {
          url: delivery.url,
          headers: webhookHeaders(delivery.headers, secretsSigningAt(secrets, startedAt), delivery.event_id, timestamp, delivery.payload),
          body: delivery.payload,
          timeoutMs: delivery.timeout_ms,
        },
        signal,
      );
      if (signal.aborted && result.statusCode === null) {
        // Cut short by shutdown or by its endpoint going away: not an attempt the receiver
        // saw through, so not counted; due again (a cancelled delivery stays cancelled).
        await store.deliveries.release(owner, [delivery.id], clock.now(), toIso(clock.now()));
        return;
      }
      const counted = metricOutcome(result);
      deps.metrics?.webhookAttempts.inc({ outcome: counted });
      deps.metrics?.webhookAttemptSeconds.observe({ outcome: counted }, result.durationMs / 1000);
      const outcome = outcomeOf(result, attempt, delivery.max_attempts, retrySchedule, clock.now());
      const recorded = await store.deliveries.recordAttempt(
        delivery,
        {
          delivery_id: delivery.id,
          attempt,
          started_at: toIso(startedAt),
          duration_ms: Math.round(result.durationMs),
          status_code: result.statusCode,
          error_class: result.errorClass,
          error: result.error,
          response_body: result.responseBody,
        },
        outcome,
        toIso(clock.now()),
      );
      if (outcome.kind === 'retry') {
        logger.info({ delivery_id: delivery.id, endpoint_id: delivery.endpoint_id, attempt, outcome: outcome.kind, error: outcome.error }, 'webhook attempt failed');
      } else {
        logOutcome(delivery, outcome.kind, outcome.kind === 'failed' ? outcome.error : null);
      }
      if (outcome.kind !== 'delivered') {
        await disableIfFailingTooLong(delivery, recorded.endpointFailingSince, outcome.error).catch((error: unknown) =>
          // Recorded all the same; the endpoint's next failed attempt looks again.
          logger.error({ err: error, endpoint_id: delivery.endpoint_id }, 'disabling a failing webhook endpoint failed'),
        );
      }
    } catch (error) {
      // The claim stays until a reap brings it back (its lease passes, or this instance dies): never lost.
      logger.error({ err: error, delivery_id: delivery.id }, 'recording a webhook attempt failed');
    }
  }

  /**
   * After a failed attempt: an endpoint whose attempts have all failed for
   * ALERTS_ENDPOINT_DISABLE_AFTER is disabled (conditionally: see disableFailingEndpoint, so
   * of several instances one does it), its unfinished deliveries cancelled and its attempts
   * in flight here aborted.
   */
  async function disableIfFailingTooLong(delivery: ClaimedDelivery, failingSince: number | null, lastError: string): Promise<void> {
    const after = deps.disableEndpointAfterMs ?? null;
    const now = clock.now();
    if (after === null || !failingTooLong(failingSince, now, after)) return;
    const reason = autoDisableReason(after, failingSince, lastError);
    if (!(await store.deliveries.disableFailingEndpoint(delivery.endpoint_id, failingSince, reason, toIso(now)))) return;
    deps.metrics?.endpointsDisabled.inc();
    logger.warn(
      { endpoint_id: delivery.endpoint_id, account_id: delivery.account_id, failing_since: toIso(failingSince), reason },
      `webhook endpoint disabled: ${reason}`,
    );
    withdraw(delivery.endpoint_id);
  }

  /** Aborts an endpoint's attempts in flight here and gives its queued claims back. */
  function withdraw(endpointId: string): void {
    const queued = slots.takeQueued(endpointId);
    if (queued.length > 0) {
      releaseQueued(queued).catch((error: unknown) => logger.error({ err: error, endpoint_id: endpointId }, 'releasing claimed deliveries failed'));
    }
    for (const { delivery, abort } of inFlight.values()) if (delivery.endpoint_id === endpointId) abort.abort();
    schedule(0);
  }

  /** Starts queued deliveries of an endpoint while it has free slots. */
  function pump(endpointId: string): void {
    for (let delivery = slots.startNext(endpointId); delivery; delivery = slots.startNext(endpointId)) {
      const started = delivery;
      const abort = new AbortController();
      inFlight.set(started.id, { delivery: started, abort });
      const task = send(started, abort.signal).finally(() => {
        sending.delete(task);
        inFlight.delete(started.id);
        slots.finished(started);
        pump(endpointId);
        schedule(0);
      });
      sending.add(task);
    }
  }

  function releaseQueued(queued: ClaimedDelivery[]): Promise<void> {
    return store.deliveries.release(
      owner,
      queued.map((d) => d.id),
      clock.now(),
      toIso(clock.now()),
    );
  }

  /** Returns how many deliveries it claimed. */
  async function fillOnce(): Promise<number> {
    const capacity = slots.free;
    if (stopping || capacity <= 0) return 0;
    // Instances die or stall rarely: looking once per poll interval is plenty, and keeps the
    // busiest path (a fill after every finished attempt) free of it.
    const now = clock.now();
    if (now - lastReap >= deps.pollIntervalMs || now < lastReap) await reap(now);
    const claimed = await store.deliveries.claimDue(owner, clock.now(), capacity, LEASE_MS, slots.room());
    for (const endpointId of slots.admit(claimed)) pump(endpointId);
    if (claimed.length === capacity) fillAgain = true;
    return claimed.length;
  }

  async function fill(): Promise<void> {
    if (filling) {
      fillAgain = true;
      return filling;
    }
    filling = (async () => {
      let failed = false;
      let claimed = 0;
      do {
        fillAgain = false;
        try {
          claimed = await fillOnce();
        } catch (error) {
          failed = true;
          logger.error({ err: error }, 'claiming webhook deliveries failed; retrying after the poll interval');
        }
      } while (fillAgain && !failed && !stopping);
      if (!stopping) {
        const next = failed ? null : await store.deliveries.nextDueAt().catch(() => null);
        let wait = next === null ? deps.pollIntervalMs : Math.min(deps.pollIntervalMs, next - clock.now());
        // Due work that the last pass could not claim is waiting for a free slot: of this
        // worker (global or of its endpoint), or of the limits shared with other instances,
        // whose attempts hold its endpoint's or account's slots even when this one holds
        // nothing. A finishing attempt here looks again at once (schedule(0) in pump), one
        // elsewhere at the next poll; looking again now would only spin on the database.
        if (wait <= 0 && claimed === 0) wait = deps.pollIntervalMs;
        schedule(failed ? deps.pollIntervalMs : wait);
      }
    })().finally(() => {
      filling = undefined;
    });
    return filling;
  }

  function kick(): void {
    if (!stopping && deps.autoStart !== false) void fill();
  }

  return {
    async start() {
      // No longer all of them: other instances' live claims are theirs. A predecessor's come
      // back once its instance row is gone or expired (the SQLite mode deletes it at start).
      await reap(clock.now());
      if (deps.notifications && !listening) {
        listening = true;
        // Deliveries became due on some instance (created, retried, released, reaped).
        deps.notifications.listen(CHANNELS.deliveries, kick);
        // Notifications may have been missed while the listening connection was down.
        deps.notifications.onResync(kick);
      }
      started = true;
      schedule(0);
    },

    running: () => started && !stopping,

    async stop() {
      stopping = true;
      if (timer) clearTimeout(timer);
      await filling;
      // Claimed but not started: straight back to pending.
      await releaseQueued(slots.takeQueued());
      // Attempts settle at once when aborted (the client guarantees it), so stop() ends
      // within the grace period whatever the receivers do.
      const grace = setTimeout(() => inFlight.forEach(({ abort }) => abort.abort()), deps.stopGraceMs);
      await Promise.allSettled([...sending]);
      clearTimeout(grace);
    },

    endpointWithdrawn: withdraw,

    kick,

    async drain() {
      do {
        await fill();
        await Promise.allSettled([...sending]);
      } while (sending.size > 0);
    },
  };
}
