import type { WebhookEndpoint, WebhookEndpointFilter, WebhookEndpointPatch, WebhookEndpointSettings } from '../webhook-endpoints.js';

export interface WebhookEndpointsRepository {
  /** Inserts the endpoint unless the account already has `limit`; atomic under concurrency. */
  insertWithinLimit(
    accountId: string,
    endpoint: WebhookEndpointSettings & { id: string; created_at: string },
    signingSecret: string,
    limit: number,
  ): Promise<WebhookEndpoint | 'limit_exceeded'>;
  list(accountId: string, filter: WebhookEndpointFilter): Promise<WebhookEndpoint[]>;
  get(accountId: string, id: string): Promise<WebhookEndpoint | undefined>;
  update(accountId: string, id: string, patch: WebhookEndpointPatch, nowIso: string): Promise<WebhookEndpoint | undefined>;
  /** Deletes the endpoint and cancels its pending deliveries, atomically. */
  delete(accountId: string, id: string, nowIso: string): Promise<boolean>;
  /** Replaces the signing secret; false when the endpoint does not exist. */
  replaceSecret(accountId: string, id: string, signingSecret: string, nowIso: string): Promise<boolean>;
  /** The current signing secret, for signing deliveries. */
  signingSecret(id: string): Promise<string | undefined>;
}
