import { Buffer } from 'node:buffer';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { TextDecoder } from 'node:util';

/**
 * Verification of the signed webhooks sent by a PolyAI Alerts API compatible service.
 *
 * Every webhook is a POST with a JSON body and three headers:
 * - `X-PolyAI-Timestamp`: Unix seconds, decimal, of this delivery attempt;
 * - `X-PolyAI-Signature`: hex HMAC-SHA256, keyed with the signing secret's UTF-8 bytes, over
 *   the exact bytes `{timestamp}.{raw body}`;
 * - `X-PolyAI-Event-ID`: the event's id, the same on every retry (use it to de-duplicate).
 */

// ---------------------------------------------------------------------------------------
// Header names (lowercase: HTTP header names are case-insensitive, Node.js lowercases them)

export const TIMESTAMP_HEADER = 'x-polyai-timestamp';
export const SIGNATURE_HEADER = 'x-polyai-signature';
export const EVENT_ID_HEADER = 'x-polyai-event-id';
export const WEBHOOK_HEADERS = { timestamp: TIMESTAMP_HEADER, signature: SIGNATURE_HEADER, eventId: EVENT_ID_HEADER } as const;

/** Largest accepted distance, in seconds, between the webhook's timestamp and the receiver's clock. */
export const DEFAULT_TOLERANCE_SECONDS = 300;

// ---------------------------------------------------------------------------------------
// Payload definitions

export type WebhookEventType = 'alerts.triggered' | 'alerts.resolved';
export type Metric = 'turn_latency_p50' | 'turn_latency_p95' | 'api_errors' | 'function_errors' | 'call_crashes' | 'call_volume';
export type ComparisonOperator = '>' | '<' | '>=' | '<=';
export type WindowDuration = '5m' | '10m' | '60m';
export type AlertState = 'ok' | 'alert' | 'no_data' | 'unknown';

/**
 * The rule an event is about. Fields marked "always sent by this service" are optional in
 * the published contract, so a receiver written against it should not rely on them.
 */
export interface WebhookAlert {
  /** The alert rule's id (`ar_...`). */
  id: string;
  name: string;
  /** The project the rule watches; null for the whole account. Always sent by this service. */
  project_id?: string | null;
  metric: Metric;
  operator: ComparisonOperator;
  threshold_value: number;
  /** Always sent by this service. */
  window_duration?: WindowDuration;
  /** The metric's value at the evaluation that caused the event. Always sent by this service. */
  current_value?: number | null;
  /** The rule's state before this transition. Always sent by this service. */
  previous_state?: AlertState | null;
  /** RFC 3339: when the rule started firing (on `alerts.resolved` too). */
  triggered_at: string;
  /** RFC 3339: when the rule stopped firing. Only on `alerts.resolved`, where this service always sends it. */
  resolved_at?: string;
}

interface WebhookEventBase<T extends WebhookEventType> {
  /** The event id, equal to the `X-PolyAI-Event-ID` header. Always sent by this service. */
  id?: string;
  event_type: T;
  /** RFC 3339: when the event happened. Always sent by this service. */
  created_at?: string;
  /** Present and true on sample events sent with `POST /v1/webhook-endpoints/{id}/test`. */
  test?: boolean;
  alert: WebhookAlert;
}

/** A rule went into `alert` (from `ok`, `no_data` or `unknown`). */
export type AlertsTriggeredEvent = WebhookEventBase<'alerts.triggered'>;

/** A firing rule went back to `ok`. */
export interface AlertsResolvedEvent extends WebhookEventBase<'alerts.resolved'> {
  alert: WebhookAlert & { previous_state?: 'alert' | null };
}

/** The body of every webhook; narrow it on `event_type`. */
export type WebhookEvent = AlertsTriggeredEvent | AlertsResolvedEvent;

// ---------------------------------------------------------------------------------------
// Verification

/**
 * Why a webhook was rejected:
 * - `missing_headers`: a required header is absent, empty or given more than once;
 * - `invalid_timestamp`: `X-PolyAI-Timestamp` is not a decimal number of seconds;
 * - `invalid_signature`: the signature is malformed or does not match (wrong secret, or the
 *   body or timestamp were changed, or the body was re-serialized before verification);
 * - `timestamp_too_old` / `timestamp_in_future`: correctly signed, but further from the
 *   receiver's clock than the tolerance (a replay, or a clock that is off);
 * - `invalid_body`: correctly signed, but not a webhook event this package knows, or its `id`
 *   differs from `X-PolyAI-Event-ID`.
 */
export type VerifyFailureReason =
  | 'missing_headers'
  | 'invalid_timestamp'
  | 'timestamp_too_old'
  | 'timestamp_in_future'
  | 'invalid_signature'
  | 'invalid_body';

export type VerifyResult =
  | { ok: true; event: WebhookEvent; eventId: string; timestamp: number }
  | { ok: false; reason: VerifyFailureReason };

export interface VerifyOptions {
  /** Largest accepted distance from the receiver's clock, in seconds (default 300). */
  toleranceSeconds?: number;
  /** The receiver's clock in milliseconds since the epoch (default `Date.now`). */
  now?: () => number;
}

export type WebhookHeadersInput = Record<string, string | string[] | undefined> | Headers;

const TIMESTAMP_FORMAT = /^[0-9]{1,15}$/;
// 32 bytes of SHA-256 as hex. Either case is accepted: the bytes are compared, not the text.
const SIGNATURE_FORMAT = /^[0-9a-fA-F]{64}$/;

const fail = (reason: VerifyFailureReason): VerifyResult => ({ ok: false, reason });

/**
 * Checks that a webhook was signed with `secret`, is recent, and carries a webhook event.
 * `secret` may be a list (several endpoints sending to one receiver, or the old and new
 * secrets while a rotation is rolled out): the webhook verifies when any of them signed it.
 *
 * `rawBody` must be the body exactly as received (a string or the bytes), never a re-encoded
 * parsed object. Header names are matched case-insensitively. Never throws: any problem,
 * including input of the wrong type, is a result with `ok: false` and a reason.
 */
export function verifyWebhook(
  rawBody: string | Buffer,
  headers: WebhookHeadersInput,
  secret: string | readonly string[],
  options: VerifyOptions = {},
): VerifyResult {
  try {
    return verify(rawBody, headers, secret, options);
  } catch {
    // Unreachable by design; fail closed should anything unforeseen throw.
    return fail('invalid_signature');
  }
}

function verify(rawBody: unknown, headers: unknown, secret: unknown, options: unknown): VerifyResult {
  let timestampText: string | undefined;
  let signature: string | undefined;
  let eventId: string | undefined;
  try {
    timestampText = headerValue(headers, TIMESTAMP_HEADER);
    signature = headerValue(headers, SIGNATURE_HEADER);
    eventId = headerValue(headers, EVENT_ID_HEADER);
  } catch {
    return fail('missing_headers');
  }
  if (timestampText === undefined || signature === undefined || eventId === undefined) return fail('missing_headers');
  if (!TIMESTAMP_FORMAT.test(timestampText)) return fail('invalid_timestamp');
  const timestamp = Number(timestampText);

  const body = bodyBytes(rawBody);
  if (body === undefined) return fail('invalid_body');
  if (!SIGNATURE_FORMAT.test(signature)) return fail('invalid_signature');
  const given = Buffer.from(signature, 'hex');
  // Every secret is tried (no early exit), so the time taken does not say which one matched.
  let signed = false;
  for (const candidate of secretList(secret)) {
    const expected = createHmac('sha256', Buffer.from(candidate, 'utf8')).update(`${timestampText}.`, 'utf8').update(body).digest();
    // Both are 32 bytes here (checked format), so timingSafeEqual cannot throw.
    if (given.length === expected.length && timingSafeEqual(given, expected)) signed = true;
  }
  if (!signed) return fail('invalid_signature');

  // Only a correctly signed request gets this far, so these reasons point at clocks or replays.
  const { toleranceSeconds, now } = readOptions(options);
  const age = Math.floor(now / 1000) - timestamp;
  if (age > toleranceSeconds) return fail('timestamp_too_old');
  if (age < -toleranceSeconds) return fail('timestamp_in_future');

  const event = parseEvent(body);
  if (event === undefined) return fail('invalid_body');
  // The header is not signed; the body's id is. A different header would defeat de-duplication.
  if (event.id !== undefined && event.id !== eventId) return fail('invalid_body');
  return { ok: true, event, eventId, timestamp };
}

/** The usable secrets given: one string or a list of them; anything else (empty, not a string) is skipped. */
function secretList(secret: unknown): string[] {
  const list: unknown[] = typeof secret === 'string' ? [secret] : Array.isArray(secret) ? [...(secret as unknown[])] : [];
  return list.filter((s): s is string => typeof s === 'string' && s !== '');
}

/** The single value of a header, trimmed; undefined when absent, empty or repeated. */
function headerValue(headers: unknown, name: string): string | undefined {
  if (typeof headers !== 'object' || headers === null) return undefined;
  let value: unknown;
  const get = (headers as { get?: unknown }).get;
  if (typeof get === 'function') {
    // A fetch Headers object (case-insensitive by itself).
    value = get.call(headers, name);
  } else {
    let matches = 0;
    for (const key of Object.keys(headers)) {
      if (key.toLowerCase() !== name) continue;
      matches++;
      value = (headers as Record<string, unknown>)[key];
    }
    if (matches !== 1) return undefined;
  }
  if (Array.isArray(value)) {
    if (value.length !== 1) return undefined;
    value = value[0];
  }
  if (typeof value !== 'string') return undefined;
  const trimmed = value.trim();
  return trimmed === '' ? undefined : trimmed;
}

function bodyBytes(rawBody: unknown): Buffer | undefined {
  if (typeof rawBody === 'string') return Buffer.from(rawBody, 'utf8');
  if (rawBody instanceof Uint8Array) return Buffer.from(rawBody.buffer, rawBody.byteOffset, rawBody.byteLength);
  return undefined;
}

function readOptions(options: unknown): { toleranceSeconds: number; now: number } {
  const given = typeof options === 'object' && options !== null ? (options as Record<string, unknown>) : {};
  const tolerance = given.toleranceSeconds;
  const toleranceSeconds = typeof tolerance === 'number' && Number.isFinite(tolerance) && tolerance >= 0 ? tolerance : DEFAULT_TOLERANCE_SECONDS;
  let now = Date.now();
  if (typeof given.now === 'function') {
    const value: unknown = (given.now as () => unknown)();
    if (typeof value === 'number' && Number.isFinite(value)) now = value;
  }
  return { toleranceSeconds, now };
}

const decoder = new TextDecoder('utf-8', { fatal: true });

function parseEvent(body: Buffer): WebhookEvent | undefined {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(body));
  } catch {
    return undefined;
  }
  return isWebhookEvent(value) ? value : undefined;
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** The shape every webhook event has; fields beyond it are passed through untouched. */
function isWebhookEvent(value: unknown): value is WebhookEvent {
  if (!isObject(value)) return false;
  if (value.event_type !== 'alerts.triggered' && value.event_type !== 'alerts.resolved') return false;
  if (value.id !== undefined && typeof value.id !== 'string') return false;
  const alert = value.alert;
  return (
    isObject(alert) &&
    typeof alert.id === 'string' &&
    typeof alert.name === 'string' &&
    typeof alert.metric === 'string' &&
    typeof alert.operator === 'string' &&
    typeof alert.threshold_value === 'number' &&
    typeof alert.triggered_at === 'string'
  );
}
