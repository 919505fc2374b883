import { RESERVED_HEADER_NAMES, type EndpointSecrets } from './webhook-endpoints.js';
import { signStandardWebhook, signWebhook } from './webhook-signing.js';

const USER_AGENT = 'alerts-webhooks/1.0 (PolyAI Alerts API compatible)';
const RESERVED = new Set<string>(RESERVED_HEADER_NAMES);

/** The secrets that sign an attempt made at `now`: the current one first. */
export function secretsSigningAt(secrets: EndpointSecrets, now: number): [string, ...string[]] {
  return secrets.previous !== null && secrets.previous.expiresAt > now ? [secrets.current, secrets.previous.secret] : [secrets.current];
}

/**
 * The headers of one attempt: the endpoint's own, then ours, which always win. A custom
 * `User-Agent` replaces ours (header names are case-insensitive: both would be sent).
 * `secrets` sign it, the current one first: X-PolyAI-Signature carries the current one's
 * signature only (its format has room for one), `webhook-signature` (Standard Webhooks) one
 * per secret, so a receiver still on the previous secret verifies during an overlap.
 */
export function webhookHeaders(
  custom: Record<string, string>,
  secrets: readonly [string, ...string[]],
  eventId: string,
  timestamp: number,
  body: string,
): Record<string, string> {
  const headers: Record<string, string> = {};
  let userAgent = USER_AGENT;
  for (const [name, value] of Object.entries(custom)) {
    const lower = name.toLowerCase();
    if (lower === 'user-agent') userAgent = value;
    else if (!RESERVED.has(lower)) headers[name] = value;
  }
  headers['content-type'] = 'application/json';
  headers['user-agent'] = userAgent;
  headers['x-polyai-timestamp'] = String(timestamp);
  headers['x-polyai-signature'] = signWebhook(secrets[0], timestamp, body);
  headers['x-polyai-event-id'] = eventId;
  headers['webhook-id'] = eventId;
  headers['webhook-timestamp'] = String(timestamp);
  headers['webhook-signature'] = signStandardWebhook(secrets, eventId, timestamp, body);
  return headers;
}
