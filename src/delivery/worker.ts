import type { Logger } from 'pino';
import { toIso, type Clock } from '../domain/clock.js';
import { RESERVED_HEADER_NAMES } from '../domain/webhook-endpoints.js';
import type { AttemptOutcome, ClaimedDelivery } from '../store/deliveries-repository.js';
import type { Store } from '../store/store.js';
import { signWebhook } from './signing.js';
import type { AttemptResult, WebhookClient } from './webhook-client.js';

export interface DeliveryWorker {
  /** Releases claims left by a previous process, then starts delivering. */
  start(): Promise<void>;
  /** Stops claiming, lets in-flight attempts finish (or aborts and releases them), waits. */
  stop(): Promise<void>;
  /** New deliveries were committed: look for due work now instead of at the next poll. */
  kick(): void;
  /** Claims and sends everything due now, and waits for those attempts (tests, tools). */
  drain(): Promise<void>;
}

export interface DeliveryWorkerDeps {
  store: Store;
  clock: Clock;
  logger: Logger;
  client: WebhookClient;
  /** Delay before each attempt, from the previous failure; its length is the attempt count. */
  retrySchedule: readonly number[];
  concurrency: number;
  perEndpointConcurrency: number;
  /** Longest sleep between looks for due work. */
  pollIntervalMs: number;
  /** How long in-flight attempts may run on after stop() before they are aborted and released. */
  stopGraceMs: number;
  /** false in tests that call drain() themselves. */
  autoStart?: boolean;
}

const USER_AGENT = 'alerts-webhooks/1.0 (PolyAI Alerts API compatible)';
// Longer than the largest endpoint timeout (30 s), so a live attempt never loses its claim.
const LEASE_MS = 120_000;
const RESERVED = new Set<string>(RESERVED_HEADER_NAMES);

/** 2xx delivered; timeouts, network errors, 408, 429 and 5xx retried; anything else final. */
export function isRetryable(result: AttemptResult): boolean {
  if (result.statusCode === null) return result.errorClass !== 'blocked_address';
  return result.statusCode === 408 || result.statusCode === 429 || result.statusCode >= 500;
}

/** The headers of one attempt: the endpoint's own, then ours, which always win. */
export function webhookHeaders(
  custom: Record<string, string>,
  secret: string,
  eventId: string,
  timestamp: number,
  body: string,
): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(custom)) if (!RESERVED.has(name.toLowerCase())) headers[name] = value;
  headers['content-type'] = 'application/json';
  headers['user-agent'] = USER_AGENT;
  headers['x-polyai-timestamp'] = String(timestamp);
  headers['x-polyai-signature'] = signWebhook(secret, timestamp, body);
  headers['x-polyai-event-id'] = eventId;
  return headers;
}

/**
 * Claims due deliveries from the database and sends them, bounded globally and per
 * endpoint so a slow endpoint only ever ties up its own slots. Every attempt is recorded
 * with the delivery's new state in one transaction.
 */
export function createDeliveryWorker(deps: DeliveryWorkerDeps): DeliveryWorker {
  const { store, clock, logger, client, retrySchedule } = deps;
  const abort = new AbortController();
  const sendingPerEndpoint = new Map<string, number>();
  const queues = new Map<string, ClaimedDelivery[]>(); // claimed, waiting for an endpoint slot
  const sending = new Set<Promise<void>>();
  let held = 0;
  let stopping = false;
  let timer: NodeJS.Timeout | undefined;
  let filling: Promise<void> | undefined;
  let fillAgain = false;

  function schedule(delayMs: number): void {
    if (stopping || deps.autoStart === false) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      void fill();
    }, Math.max(0, delayMs));
    timer.unref();
  }

  async function outcomeOf(delivery: ClaimedDelivery, attempt: number, result: AttemptResult): Promise<AttemptOutcome> {
    if (result.statusCode !== null && result.statusCode >= 200 && result.statusCode < 300) return { kind: 'delivered' };
    const error = result.statusCode !== null ? `HTTP ${result.statusCode}` : `${result.errorClass}: ${result.error}`;
    const attemptsAllowed = Math.min(delivery.max_attempts, retrySchedule.length);
    if (!isRetryable(result) || attempt >= attemptsAllowed) return { kind: 'failed', error };
    return { kind: 'retry', nextAttemptAt: clock.now() + retrySchedule[attempt]!, error };
  }

  async function send(delivery: ClaimedDelivery): Promise<void> {
    const attempt = delivery.attempts + 1;
    try {
      const secret = await store.webhookEndpoints.signingSecret(delivery.endpoint_id);
      if (secret === undefined) return; // endpoint deleted meanwhile: its deliveries were cancelled
      const startedAt = clock.now();
      const timestamp = Math.floor(startedAt / 1000);
      const result = await client.send(
        {
          url: delivery.url,
          headers: webhookHeaders(delivery.headers, secret, delivery.event_id, timestamp, delivery.payload),
          body: delivery.payload,
          timeoutMs: delivery.timeout_ms,
        },
        abort.signal,
      );
      if (abort.signal.aborted && result.statusCode === null) {
        await store.deliveries.release([delivery.id], clock.now(), toIso(clock.now()));
        return;
      }
      const outcome = await outcomeOf(delivery, attempt, result);
      await store.deliveries.recordAttempt(
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
      if (outcome.kind !== 'delivered') {
        logger.info({ delivery_id: delivery.id, endpoint_id: delivery.endpoint_id, attempt, outcome: outcome.kind, error: outcome.error }, 'webhook attempt failed');
      }
    } catch (error) {
      // The claim stays until start-up or lease expiry brings it back: never lost.
      logger.error({ err: error, delivery_id: delivery.id }, 'recording a webhook attempt failed');
    }
  }

  const sendingTo = (endpointId: string) => sendingPerEndpoint.get(endpointId) ?? 0;

  /** Starts queued deliveries of an endpoint while it has free slots. */
  function pump(endpointId: string): void {
    const queue = queues.get(endpointId);
    while (queue && queue.length > 0 && sendingTo(endpointId) < deps.perEndpointConcurrency) {
      const delivery = queue.shift()!;
      sendingPerEndpoint.set(endpointId, sendingTo(endpointId) + 1);
      const task = send(delivery).finally(() => {
        sending.delete(task);
        held -= 1;
        sendingPerEndpoint.set(endpointId, sendingTo(endpointId) - 1);
        if (sendingTo(endpointId) === 0) sendingPerEndpoint.delete(endpointId);
        pump(endpointId);
        schedule(0);
      });
      sending.add(task);
    }
    if (queue && queue.length === 0) queues.delete(endpointId);
  }

  /** Returns how many deliveries it claimed. */
  async function fillOnce(): Promise<number> {
    const capacity = deps.concurrency - held;
    if (stopping || capacity <= 0) return 0;
    const roomFor = (id: string) => deps.perEndpointConcurrency - sendingTo(id) - (queues.get(id)?.length ?? 0);
    const full = [...new Set([...sendingPerEndpoint.keys(), ...queues.keys()])].filter((id) => roomFor(id) <= 0);
    const claimed = await store.deliveries.claimDue(clock.now(), capacity, LEASE_MS, roomFor, full);
    held += claimed.length;
    for (const delivery of claimed) {
      const queue = queues.get(delivery.endpoint_id) ?? [];
      queue.push(delivery);
      queues.set(delivery.endpoint_id, queue);
    }
    for (const endpointId of new Set(claimed.map((d) => d.endpoint_id))) pump(endpointId);
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
        // Due work that the last pass could not claim while attempts are running is waiting for
        // a free slot (global or of its endpoint). A finishing attempt looks again at once
        // (schedule(0) in pump), so looking again now would only spin on the database.
        if (wait <= 0 && claimed === 0 && held > 0) wait = deps.pollIntervalMs;
        schedule(failed ? deps.pollIntervalMs : wait);
      }
    })().finally(() => {
      filling = undefined;
    });
    return filling;
  }

  return {
    async start() {
      const released = await store.deliveries.releaseAllInFlight(clock.now(), toIso(clock.now()));
      if (released > 0) logger.warn({ released }, 'webhook deliveries left in flight by the previous run are due again');
      schedule(0);
    },

    async stop() {
      stopping = true;
      if (timer) clearTimeout(timer);
      await filling;
      // Claimed but not started: straight back to pending.
      const queued = [...queues.values()].flat().map((d) => d.id);
      queues.clear();
      held -= queued.length;
      await store.deliveries.release(queued, clock.now(), toIso(clock.now()));
      const grace = setTimeout(() => abort.abort(), deps.stopGraceMs);
      await Promise.allSettled([...sending]);
      clearTimeout(grace);
    },

    kick() {
      if (!stopping && deps.autoStart !== false) void fill();
    },

    async drain() {
      do {
        await fill();
        await Promise.allSettled([...sending]);
      } while (sending.size > 0);
    },
  };
}
