import { RESERVED_HEADER_NAMES } from './webhook-endpoints.js';
import { signWebhook } from './webhook-signing.js';

const USER_AGENT = 'alerts-webhooks/1.0 (PolyAI Alerts API compatible)';
const RESERVED = new Set<string>(RESERVED_HEADER_NAMES);

/**
 * The headers of one attempt: the endpoint's own, then ours, which always win. A custom
 * `User-Agent` replaces ours (header names are case-insensitive: both would be sent).
 */
export function webhookHeaders(
  custom: Record<string, string>,
  secret: string,
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
  headers['x-polyai-signature'] = signWebhook(secret, timestamp, body);
  headers['x-polyai-event-id'] = eventId;
  return headers;
}
