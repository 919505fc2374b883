import type { EndpointSecrets, WebhookEndpoint, WebhookEndpointFilter, WebhookEndpointPatch, WebhookEndpointSettings } from '../webhook-endpoints.js';

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
  /**
   * Replaces the signing secret; false when the endpoint does not exist. With
   * `previousSignsUntil` (epoch ms) the secret being replaced becomes the previous one, signing
   * too until then (whatever previous secret there was is dropped); without it the endpoint
   * keeps no previous secret.
   */
  replaceSecret(accountId: string, id: string, signingSecret: string, nowIso: string, previousSignsUntil?: number): Promise<boolean>;
  /** The current signing secret. */
  signingSecret(id: string): Promise<string | undefined>;
  /** The current signing secret and the previous one with its expiry, for signing deliveries. */
  signingSecrets(id: string): Promise<EndpointSecrets | undefined>;
}
