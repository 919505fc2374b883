import { toIso, type Clock } from './clock.js';
import { notFound } from './errors.js';
import { ID_PREFIX, newId } from './ids.js';
import type { Delivery, AttemptRecord, DeliveriesRepository, DeliveryStatus } from './ports/deliveries-repository.js';
import type { AttemptResult, WebhookClient } from './ports/webhook-client.js';
import type { WebhookEndpointsRepository } from './ports/webhook-endpoints-repository.js';
import { secretsSigningAt, webhookHeaders } from './webhook-headers.js';

export interface DeliveryView extends Delivery {
  attempt_log: AttemptRecord[];
}

export interface TestDeliveryResult extends AttemptResult {
  delivered: boolean;
  eventId: string;
}

export interface DeliveriesService {
  list(accountId: string, endpointId: string, filter: { status?: DeliveryStatus; event_type?: string }): Promise<DeliveryView[]>;
  /** Makes a failed or delivered delivery due now for one more attempt (same event id). */
  retry(accountId: string, endpointId: string, deliveryId: string): Promise<DeliveryView>;
  /** Sends a signed sample `alerts.triggered` (marked as a test) and reports the outcome. */
  sendTest(accountId: string, endpointId: string): Promise<TestDeliveryResult>;
}

/** Deliveries listed per request: the most recent ones. */
const LIST_LIMIT = 100;

export function createDeliveriesService(deps: {
  deliveries: DeliveriesRepository;
  endpoints: WebhookEndpointsRepository;
  client: WebhookClient;
  clock: Clock;
  /** Wakes the delivery worker after a retry is queued. */
  onQueued: () => void;
}): DeliveriesService {
  const { deliveries, endpoints, client, clock } = deps;

  async function requireEndpoint(accountId: string, endpointId: string) {
    const endpoint = await endpoints.get(accountId, endpointId);
    if (!endpoint) throw notFound('webhook endpoint', endpointId);
    return endpoint;
  }

  async function withAttempts(list: Delivery[]): Promise<DeliveryView[]> {
    const attempts = await deliveries.attemptsOf(list.map((d) => d.id));
    return list.map((d) => ({ ...d, attempt_log: attempts.filter((a) => a.delivery_id === d.id) }));
  }

  return {
    async list(accountId, endpointId, filter) {
      await requireEndpoint(accountId, endpointId);
      return withAttempts(await deliveries.list(accountId, endpointId, filter, LIST_LIMIT));
    },

    async retry(accountId, endpointId, deliveryId) {
      await requireEndpoint(accountId, endpointId);
      const existing = await deliveries.get(accountId, endpointId, deliveryId);
      if (!existing) throw notFound('delivery', deliveryId);
      const now = clock.now();
      // Pending or in-flight deliveries are already on their way: nothing to add.
      if (await deliveries.retryNow(accountId, endpointId, deliveryId, now, toIso(now))) deps.onQueued();
      const [view] = await withAttempts([(await deliveries.get(accountId, endpointId, deliveryId))!]);
      return view!;
    },

    async sendTest(accountId, endpointId) {
      const endpoint = await requireEndpoint(accountId, endpointId);
      const secrets = (await endpoints.signingSecrets(endpointId))!;
      const now = clock.now();
      const eventId = newId(ID_PREFIX.event);
      const at = toIso(now);
      const body = JSON.stringify({
        id: eventId,
        event_type: 'alerts.triggered',
        created_at: at,
        test: true,
        alert: {
          id: 'ar_TestTestTestTestTestTest',
          name: 'Test alert (sent from the API; no rule fired)',
          project_id: null,
          metric: 'turn_latency_p95',
          operator: '>=',
          threshold_value: 1500,
          window_duration: '5m',
          current_value: 1720,
          previous_state: 'ok',
          triggered_at: at,
        },
      });
      const timestamp = Math.floor(now / 1000);
      const result = await client.send({
        url: endpoint.url,
        headers: webhookHeaders(endpoint.headers, secretsSigningAt(secrets, now), eventId, timestamp, body),
        body,
        timeoutMs: endpoint.timeout_ms,
      });
      const delivered = result.statusCode !== null && result.statusCode >= 200 && result.statusCode < 300;
      return { ...result, delivered, eventId };
    },
  };
}
