import { createHmac, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { expect } from 'vitest';
import type { LookupFunction } from '../../src/delivery/webhook-client.js';
import type { ReceivedRequest } from './https-receiver.js';
import { validateComponent } from './published-spec.js';
import { endpointBody, ruleBody, type TestServer } from './server.js';

/**
 * The documented signature, computed here on its own from node:crypto (not with
 * src/domain/webhook-signing.ts): lowercase hex HMAC-SHA256 keyed with the secret's UTF-8 bytes
 * over the bytes `{timestamp}.{raw body}`.
 */
export function independentSignature(secret: string, timestamp: string, rawBody: Buffer): string {
  const hmac = createHmac('sha256', Buffer.from(secret, 'utf8'));
  hmac.update(Buffer.concat([Buffer.from(timestamp, 'utf8'), Buffer.from('.', 'utf8'), rawBody]));
  return hmac.digest('hex');
}

/** How a receiver would check a webhook, with a constant-time comparison. */
export function signatureMatches(request: ReceivedRequest, secret: string): boolean {
  const timestamp = request.headers['x-polyai-timestamp'];
  const signature = request.headers['x-polyai-signature'];
  if (typeof timestamp !== 'string' || typeof signature !== 'string') return false;
  const expected = Buffer.from(independentSignature(secret, timestamp, request.body), 'utf8');
  const given = Buffer.from(signature, 'utf8');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

const OUR_HEADERS = ['content-type', 'x-polyai-timestamp', 'x-polyai-signature', 'x-polyai-event-id', 'webhook-id', 'webhook-timestamp', 'webhook-signature'];

/** How often a header name occurs in the raw request (case-insensitive). */
export function headerCount(request: ReceivedRequest, name: string): number {
  return request.rawHeaders.filter((value, i) => i % 2 === 0 && value.toLowerCase() === name).length;
}

export interface VerifiedWebhook {
  eventId: string;
  timestamp: number;
  body: Record<string, any>;
}

/**
 * Everything a receiver may rely on: a POST with JSON content type, each of our headers (the
 * Standard Webhooks ones too) exactly once, a decimal Unix timestamp, a bare lowercase hex
 * signature that verifies with `secret`, and a body that is a published WebhookEvent. Fails
 * the test otherwise.
 */
export function expectVerifiedWebhook(request: ReceivedRequest, secret: string): VerifiedWebhook {
  expect(request.method).toBe('POST');
  for (const name of OUR_HEADERS) expect(headerCount(request, name), `${name} sent once`).toBe(1);
  expect(request.headers['content-type']).toBe('application/json');
  const timestamp = request.headers['x-polyai-timestamp'] as string;
  expect(timestamp).toMatch(/^[1-9][0-9]*$/);
  const signature = request.headers['x-polyai-signature'] as string;
  expect(signature).toMatch(/^[0-9a-f]{64}$/);
  expect(signature).toBe(independentSignature(secret, timestamp, request.body));
  expect(signatureMatches(request, secret)).toBe(true);
  const eventId = request.headers['x-polyai-event-id'] as string;
  expect(eventId).toMatch(/^\S+$/);
  // The Standard Webhooks headers say the same (test/standard-webhooks.test.ts verifies their signature).
  expect(request.headers['webhook-id']).toBe(eventId);
  expect(request.headers['webhook-timestamp']).toBe(timestamp);
  const body = JSON.parse(request.body.toString('utf8')) as Record<string, any>;
  expect(validateComponent('WebhookEvent', body)).toEqual([]);
  if (body.id !== undefined) expect(body.id).toBe(eventId);
  return { eventId, timestamp: Number(timestamp), body };
}

/** Addresses a test name resolves to: fixed, or decided on each lookup (DNS rebinding). */
export type TestAddresses = string | string[] | (() => string | string[]);

const isLoopback = (address: string) =>
  (isIP(address) === 4 && address.startsWith('127.')) || address === '::1' || /^::ffff:127\.\d+\.\d+\.\d+$/i.test(address);

/**
 * A DNS lookup for the service that only knows the given names, all of which must map to
 * loopback addresses (checked on every answer); anything else fails as not found, so no
 * test ever asks real DNS or reaches past this machine.
 */
export function loopbackLookup(names: Record<string, TestAddresses>): LookupFunction & { calls: string[] } {
  for (const [name, entry] of Object.entries(names)) {
    for (const address of typeof entry === 'function' ? [] : [entry].flat()) {
      if (!isLoopback(address)) throw new Error(`test lookup: ${name} -> ${address} is not a loopback address`);
    }
  }
  const calls: string[] = [];
  const lookup = (hostname: string, options: unknown, callback: (...args: unknown[]) => void) => {
    const cb = typeof options === 'function' ? (options as typeof callback) : callback;
    const all = typeof options === 'object' && options !== null && (options as { all?: boolean }).all === true;
    calls.push(hostname);
    const entry = Object.hasOwn(names, hostname) ? names[hostname] : undefined;
    const addresses = entry === undefined ? undefined : [typeof entry === 'function' ? entry() : entry].flat();
    setImmediate(() => {
      if (addresses === undefined) {
        const error = Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND', hostname });
        return cb(error, all ? [] : undefined);
      }
      const stray = addresses.find((address) => !isLoopback(address));
      if (stray !== undefined) {
        // Refused here, before any connection; the test's own expectations then fail.
        return cb(new Error(`test lookup: ${hostname} -> ${stray} is not a loopback address`), all ? [] : undefined);
      }
      const list = addresses.map((address) => ({ address, family: isIP(address) }));
      if (all) cb(null, list);
      else cb(null, list[0]!.address, list[0]!.family);
    });
  };
  return Object.assign(lookup as unknown as LookupFunction, { calls });
}

export interface CreatedEndpoint {
  id: string;
  secret: string;
  body: Record<string, any>;
}

export async function createEndpoint(server: TestServer, overrides: Record<string, unknown>, key?: string): Promise<CreatedEndpoint> {
  const res = await server.request('POST', '/v1/webhook-endpoints', { body: endpointBody(overrides), key });
  expect(res.status, res.text).toBe(201);
  return { id: res.body.id, secret: res.body.signing_secret, body: res.body };
}

export const PROJECT = 'proj_abc123';

/** A rule body that fires on the first API error of the project in 5 minutes. */
export function ruleBodyForErrors(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return ruleBody({ name: 'API errors', metric: 'api_errors', operator: '>=', threshold_value: 1, window_duration: '5m', ...overrides });
}

export async function createErrorRule(server: TestServer, overrides: Record<string, unknown> = {}, key?: string) {
  const res = await server.request('POST', '/v1/alert-rules', { body: ruleBodyForErrors(overrides), key });
  expect(res.status, res.text).toBe(201);
  return res.body as Record<string, any> & { id: string };
}

/** Sends telemetry through the public API (the real path to alerts.triggered). */
export async function sendApiError(server: TestServer, key?: string, project = PROJECT): Promise<void> {
  const res = await server.request('POST', '/v1/telemetry/events', { body: { events: [{ type: 'api_error', project_id: project }] }, key });
  expect(res.status, res.text).toBe(202);
}

/** Creates an api_errors >= 1 rule and sends one API error: the rule fires. */
export async function triggerAlert(server: TestServer, key?: string) {
  const rule = await createErrorRule(server, {}, key);
  await sendApiError(server, key);
  const after = await server.request('GET', `/v1/alert-rules/${rule.id}`, { key });
  expect(after.body.current_state).toBe('alert');
  return rule;
}

/** The window moves past the error: the rule resolves on the next evaluation pass. */
export async function resolveAlerts(server: TestServer, clock: { advance(ms: number): void }): Promise<void> {
  clock.advance(5 * 60_000);
  await server.service.engine.tick();
}

export async function listDeliveries(server: TestServer, endpointId: string, query = '', key?: string): Promise<any[]> {
  const res = await server.request('GET', `/v1/webhook-endpoints/${endpointId}/deliveries${query}`, { key });
  expect(res.status, res.text).toBe(200);
  return res.body.data;
}

export async function onlyDelivery(server: TestServer, endpointId: string): Promise<any> {
  const list = await listDeliveries(server, endpointId);
  expect(list).toHaveLength(1);
  return list[0];
}

/** Polls until `check` passes (for tests where the real worker runs by itself). */
export async function eventually<T>(read: () => Promise<T>, check: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (check(value)) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms; last value: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
