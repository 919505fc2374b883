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
  /** Until when the secret replaced by the last rotation with overlap still signs; null when none does (ours). */
  previous_secret_expires_at: string | null;
  /** Why the service disabled the endpoint itself (its attempts all failed for too long); null otherwise (ours). */
  disabled_reason: string | null;
  disabled_at: string | null;
}

export interface NewWebhookEndpointInput {
  name: string;
  url: string;
  event_types: WebhookEventType[];
  headers?: Record<string, string> | undefined;
  timeout_ms?: number | undefined;
  enabled?: boolean | undefined;
}

/**
 * The secrets an endpoint holds: the current one and, after a rotation with overlap, the one
 * it replaced with the time (epoch ms) until which that one still signs.
 */
export interface EndpointSecrets {
  current: string;
  previous: { secret: string; expiresAt: number } | null;
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
 * A new signing secret: 32 bytes from the cryptographic source, base64 without padding,
 * behind a `whsec_` prefix so it is recognisable in a secret scanner. Bytes whose encoding
 * has a `+` or `/` are drawn again (about three draws in four), so the text is letters and
 * digits only: the same in base64 and base64url, which is what lets a receiver hand it
 * unchanged to a Standard Webhooks library (standard base64 after `whsec_`) while older
 * secrets, base64url, keep verifying as they always did. 2^256 × (62/64)^43 ≈ 2^254 secrets
 * remain possible.
 */
export function newSigningSecret(): string {
  for (;;) {
    const text = randomBytes(32).toString('base64url');
    if (/^[A-Za-z0-9]+$/.test(text)) return 'whsec_' + text;
  }
}

/** Longest overlap a rotation may give the secret it replaces (ours). */
export const MAX_SECRET_OVERLAP_MS = 7 * 86_400_000;
const OVERLAP_UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * The `overlap` of a rotation (`30s`, `15m`, `24h`, `7d`) in milliseconds: more than 0, at most
 * 7 days. Returns the problem's text instead when it is not one (the caller names the field).
 */
export function parseSecretOverlap(text: string): number | string {
  const match = /^(\d{1,9})([smhd])$/.exec(text);
  if (!match) return 'must be a duration such as 30s, 15m, 24h or 7d';
  const ms = Number(match[1]) * OVERLAP_UNIT_MS[match[2]!]!;
  if (ms <= 0) return 'must be more than 0';
  if (ms > MAX_SECRET_OVERLAP_MS) return 'must be at most 7d';
  return ms;
}

/** Longest endpoint name (as published) and URL (ours: a deviation, see README). */
export const MAX_ENDPOINT_NAME_LENGTH = 255;
export const MAX_ENDPOINT_URL_LENGTH = 2048;
/** Custom headers an endpoint may carry, and the longest name and value (ours, see README). */
export const MAX_CUSTOM_HEADERS = 20;
export const MAX_HEADER_NAME_LENGTH = 128;
export const MAX_HEADER_VALUE_LENGTH = 1024;
/**
 * Entries an endpoint's event_types may list (ours, see README): a body cannot carry a
 * million of them; repeats are still accepted (and dropped), so it is more than the number
 * of event types.
 */
export const MAX_EVENT_TYPES_LISTED = 16;

/**
 * Headers that describe one connection or message framing, not the webhook: a custom one
 * would either break every attempt (the HTTP client refuses them) or be meaningless, so
 * they are refused on write.
 */
export const FORBIDDEN_HEADER_NAMES = [
  'connection',
  'content-length',
  'expect',
  'host',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
] as const;

/**
 * Headers our own delivery sets, or never sends. A custom header of one of our names is
 * accepted on write (clients commonly repeat Content-Type) but never sent: ours always win.
 * The forbidden names are refused on write; they are listed here too so that endpoints
 * stored before that rule still deliver. The Standard Webhooks headers are ours too: a
 * custom `webhook-signature` must not stand beside (or instead of) the real one.
 */
export const RESERVED_HEADER_NAMES = [
  'content-type',
  'x-polyai-timestamp',
  'x-polyai-signature',
  'x-polyai-event-id',
  'webhook-id',
  'webhook-timestamp',
  'webhook-signature',
  ...FORBIDDEN_HEADER_NAMES,
] as const;

const FORBIDDEN = new Set<string>(FORBIDDEN_HEADER_NAMES);
// RFC 9110 token: what a header name may be.
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Visible ASCII, space and tab only: CR/LF would let a header value inject others, NUL ends it.
const HEADER_VALUE = /^[\t\x20-\x7e]*$/;

/** Checks custom headers; returns one message per bad header (empty when all are fine). */
export function customHeaderProblems(headers: Record<string, string>): { field: string; message: string }[] {
  const problems: { field: string; message: string }[] = [];
  const names = Object.keys(headers);
  if (names.length > MAX_CUSTOM_HEADERS) {
    problems.push({ field: 'headers', message: `must have at most ${MAX_CUSTOM_HEADERS} headers (has ${names.length})` });
  }
  const seen = new Map<string, string>();
  for (const [name, value] of Object.entries(headers)) {
    // A name can be as long as the body allows: the message names at most its start.
    const field = `headers.${name.length > 64 ? `${name.slice(0, 63)}…` : name}`;
    const lower = name.toLowerCase();
    if (!HEADER_NAME.test(name)) problems.push({ field, message: 'is not a valid HTTP header name' });
    else if (name.length > MAX_HEADER_NAME_LENGTH) problems.push({ field, message: `name is longer than ${MAX_HEADER_NAME_LENGTH} characters` });
    else if (FORBIDDEN.has(lower)) problems.push({ field, message: 'is a connection-level header and cannot be set' });
    else if (seen.has(lower)) problems.push({ field, message: `repeats ${seen.get(lower)} (header names are case-insensitive)` });
    else if (!HEADER_VALUE.test(value)) problems.push({ field, message: 'must contain printable ASCII characters only' });
    else if (value.length > MAX_HEADER_VALUE_LENGTH) problems.push({ field, message: `must be at most ${MAX_HEADER_VALUE_LENGTH} characters` });
    if (!seen.has(lower)) seen.set(lower, name);
  }
  return problems;
}

/**
 * Why an https:// URL (already checked by the schema) can never be delivered to, or
 * undefined when it can: no host (`https://`, `https:///path`, `https://:443/`; URL parsers
 * would read `https:///path` as the host `path`), a port outside 1-65535 (port 0 would
 * silently mean 443) or user information, which is never sent.
 */
export function webhookUrlProblem(url: string): string | undefined {
  const authority = /^https:\/\/([^/?#\\]*)/i.exec(url)?.[1];
  if (authority === undefined) return 'must be an https:// URL';
  if (authority.includes('@')) return 'must not contain user information (user:password@): it would never be sent';
  // The host is the authority without its port (an IPv6 literal keeps its colons in brackets).
  if (authority.replace(/:[^:\]]*$/, '') === '') return 'must name a host';
  const port = /:([^:\]]*)$/.exec(authority.replace(/^\[[^\]]*\]/, '[]'))?.[1];
  if (port !== undefined && port !== '' && !(/^\d{1,5}$/.test(port) && Number(port) >= 1 && Number(port) <= 65535)) {
    return 'must have a port between 1 and 65535';
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'is not a valid URL';
  }
  if (parsed.protocol !== 'https:') return 'must be an https:// URL';
  if (parsed.username !== '' || parsed.password !== '') return 'must not contain user information (user:password@): it would never be sent';
  if (parsed.hostname === '') return 'must name a host';
  return undefined;
}
