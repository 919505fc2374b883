import { randomBytes } from 'node:crypto';

export const WEBHOOK_EVENT_TYPES = ['alerts.triggered', 'alerts.resolved'] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** Webhook endpoints an account may hold; the published contract answers 409 beyond it. */
export const MAX_WEBHOOK_ENDPOINTS_PER_ACCOUNT = 10;
export const DEFAULT_TIMEOUT_MS = 5000;

export interface WebhookEndpointSettings {
  name: string;
  url: string;
  event_types: WebhookEventType[];
  headers: Record<string, string>;
  timeout_ms: number;
  enabled: boolean;
}

export interface WebhookEndpoint extends WebhookEndpointSettings {
  id: string;
  account_id: string;
  created_at: string;
  updated_at: string;
}

export interface NewWebhookEndpointInput {
  name: string;
  url: string;
  event_types: WebhookEventType[];
  headers?: Record<string, string> | undefined;
  timeout_ms?: number | undefined;
  enabled?: boolean | undefined;
}

export type WebhookEndpointPatch = Partial<WebhookEndpointSettings>;

export interface WebhookEndpointFilter {
  enabled?: boolean | undefined;
  event_type?: WebhookEventType | undefined;
}

export function endpointSettingsFromInput(input: NewWebhookEndpointInput): WebhookEndpointSettings {
  return {
    name: input.name,
    url: input.url,
    // A repeated type would mean nothing more; keep the first occurrence of each.
    event_types: [...new Set(input.event_types)],
    headers: input.headers ?? {},
    timeout_ms: input.timeout_ms ?? DEFAULT_TIMEOUT_MS,
    enabled: input.enabled ?? true,
  };
}

/**
 * A new signing secret: 32 bytes (256 bits) from the cryptographic source, base64url,
 * behind a `whsec_` prefix so it is recognisable in a secret scanner.
 */
export function newSigningSecret(): string {
  return 'whsec_' + randomBytes(32).toString('base64url');
}

/**
 * Headers our own delivery sets. A custom header of the same name is accepted on write
 * (clients commonly repeat Content-Type) but never sent: ours always win.
 */
export const RESERVED_HEADER_NAMES = [
  'content-type',
  'content-length',
  'host',
  'x-polyai-timestamp',
  'x-polyai-signature',
  'x-polyai-event-id',
] as const;

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Visible ASCII, space and tab only: CR/LF would let a header value inject others.
const HEADER_VALUE = /^[\t\x20-\x7e]*$/;

/** Checks custom headers; returns one message per bad header (empty when all are fine). */
export function customHeaderProblems(headers: Record<string, string>): { field: string; message: string }[] {
  const problems: { field: string; message: string }[] = [];
  for (const [name, value] of Object.entries(headers)) {
    const field = `headers.${name}`;
    if (!HEADER_NAME.test(name)) problems.push({ field, message: 'is not a valid HTTP header name' });
    else if (!HEADER_VALUE.test(value)) problems.push({ field, message: 'must contain printable ASCII characters only' });
  }
  return problems;
}
