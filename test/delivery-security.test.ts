import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { createAddressGuard } from '../src/delivery/address-guard.js';
import type { LookupFunction } from '../src/delivery/webhook-client.js';
import { createLogger } from '../src/logger.js';
import { createService } from '../src/service.js';
import { databaseUrlFor, dropDatabaseFor } from './helpers/database.js';
import { closedPort, startHttpsReceiver, type HttpsReceiver } from './helpers/https-receiver.js';
import { endpointBody, startTestServer, testClock, type TestServer } from './helpers/server.js';
import {
  createEndpoint,
  expectVerifiedWebhook,
  listDeliveries,
  loopbackLookup,
  onlyDelivery,
  PROJECT,
  resolveAlerts,
  ruleBodyForErrors,
  triggerAlert,
} from './helpers/webhook-fixtures.js';

/**
 * The address guard, TLS checks and secrecy of webhook delivery. Forbidden destinations
 * are only ever loopback addresses outside the allow-list (127.0.0.2, ::1, and names the
 * test lookup maps to them): if the guard had a bug, no packet would leave this machine.
 * Every "blocked" receiver is real and listening, so a guard failure shows up as a
 * request (or at least a TCP connection) it records.
 */

const START = Date.parse('2026-03-15T10:30:00.000Z');
const HOUR = 3_600_000;
const ONLY_127_0_0_1 = { ALERTS_WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32' };

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function server(options: { env?: Record<string, string>; lookup?: LookupFunction; clock?: ReturnType<typeof testClock> } = {}) {
  const clock = options.clock ?? testClock(START);
  const s = await startTestServer({ clock, env: options.env ?? ONLY_127_0_0_1, lookup: options.lookup ?? loopbackLookup({}) });
  cleanups.push(() => s.close());
  return s;
}

async function receiver(options: { host?: string; port?: number } = {}): Promise<HttpsReceiver> {
  const r = await startHttpsReceiver(options);
  cleanups.push(() => r.close());
  return r;
}

const drain = (s: TestServer) => s.service.deliveryWorker.drain();

function expectUntouched(...receivers: HttpsReceiver[]): void {
  for (const r of receivers) {
    expect(r.requests, `${r.url} must receive nothing`).toHaveLength(0);
    expect(r.connections, `${r.url} must not even be connected to`).toBe(0);
  }
}

async function expectBlocked(s: TestServer, endpointId: string): Promise<void> {
  const delivery = await onlyDelivery(s, endpointId);
  expect(delivery, JSON.stringify(delivery)).toMatchObject({ status: 'failed', attempt_count: 1, next_attempt_at: null });
  expect(delivery.attempts).toHaveLength(1);
  expect(delivery.attempts[0]).toMatchObject({ status_code: null, error_class: 'blocked_address', response_body: null });
  expect(delivery.last_error).toMatch(/^blocked_address/);
}

describe('forbidden addresses (only 127.0.0.1/32 allowed)', () => {
  it('blocks literal 127.0.0.2, [::1], [::ffff:127.0.0.2] and names resolving to them: recorded as blocked_address, not retried, nothing received', async () => {
    const clock = testClock(START);
    const allowed = await receiver({ host: '127.0.0.1' });
    const v4 = await receiver({ host: '127.0.0.2' });
    const v6 = await receiver({ host: '::1' });
    const lookup = loopbackLookup({ 'rebind.test': '127.0.0.2', 'localhost-v6.test': '::1', 'mapped.test': '::ffff:127.0.0.2' });
    const s = await server({ clock, lookup });

    const control = await createEndpoint(s, { url: allowed.url, name: 'allowed' });
    const blocked = [
      await createEndpoint(s, { url: `https://127.0.0.2:${v4.port}/hook`, name: 'literal v4' }),
      await createEndpoint(s, { url: `https://[::1]:${v6.port}/hook`, name: 'literal v6' }),
      await createEndpoint(s, { url: `https://[::ffff:127.0.0.2]:${v4.port}/hook`, name: 'v4-mapped v6' }),
      await createEndpoint(s, { url: v4.urlFor('rebind.test'), name: 'name -> 127.0.0.2' }),
      await createEndpoint(s, { url: v6.urlFor('localhost-v6.test'), name: 'name -> ::1' }),
      await createEndpoint(s, { url: v4.urlFor('mapped.test'), name: 'name -> ::ffff:127.0.0.2' }),
    ];
    await triggerAlert(s);
    await drain(s);

    // The event was real and deliverable: the allowed receiver got it.
    expect(allowed.requests).toHaveLength(1);
    expectVerifiedWebhook(allowed.requests[0]!, control.secret);
    for (const endpoint of blocked) await expectBlocked(s, endpoint.id);
    expect(lookup.calls).toEqual(expect.arrayContaining(['rebind.test', 'localhost-v6.test', 'mapped.test']));

    // Never retried, however long we wait.
    clock.advance(6 * HOUR);
    await drain(s);
    for (const endpoint of blocked) expect((await onlyDelivery(s, endpoint.id)).attempt_count).toBe(1);
    expectUntouched(v4, v6);
  });

  it('connects only to the allowed address of a name that resolves to both a forbidden and an allowed one', async () => {
    const allowed = await receiver({ host: '127.0.0.1' });
    const forbidden = await receiver({ host: '127.0.0.2', port: allowed.port });
    const s = await server({ lookup: loopbackLookup({ 'mixed.test': ['127.0.0.2', '127.0.0.1'] }) });
    const endpoint = await createEndpoint(s, { url: allowed.urlFor('mixed.test') });
    await triggerAlert(s);
    await drain(s);
    expect((await onlyDelivery(s, endpoint.id)).status).toBe('delivered');
    expectVerifiedWebhook(allowed.requests[0]!, endpoint.secret);
    expectUntouched(forbidden);
  });

  it('blocks a name that re-resolves to a forbidden address between attempts (DNS rebinding)', async () => {
    const clock = testClock(START);
    const allowed = await receiver({ host: '127.0.0.1' });
    const forbidden = await receiver({ host: '127.0.0.2', port: allowed.port });
    // The first answer is allowed, every later one forbidden.
    let lookups = 0;
    const lookup = loopbackLookup({ 'rebind.test': () => (++lookups === 1 ? '127.0.0.1' : '127.0.0.2') });
    const s = await server({ clock, lookup });
    // A retryable failure that also closes the connection, so the retry must connect afresh.
    allowed.setDefault({ status: 503, headers: { connection: 'close' } });
    const endpoint = await createEndpoint(s, { url: allowed.urlFor('rebind.test') });
    await triggerAlert(s);
    await drain(s);
    expect(allowed.requests).toHaveLength(1);
    expect((await onlyDelivery(s, endpoint.id)).status).toBe('pending');

    clock.advance(60_000);
    await drain(s);
    const delivery = await onlyDelivery(s, endpoint.id);
    expect(delivery).toMatchObject({ status: 'failed', attempt_count: 2, next_attempt_at: null });
    expect(delivery.attempts.map((a: any) => a.error_class)).toEqual([null, 'blocked_address']);
    expect(lookups).toBeGreaterThanOrEqual(2);
    expect(allowed.requests).toHaveLength(1);
    expectUntouched(forbidden);
  });

  it('blocks loopback entirely when no range is allowed', async () => {
    const r = await receiver({ host: '127.0.0.1' });
    const s = await server({ env: {} });
    const endpoint = await createEndpoint(s, { url: r.url });
    await triggerAlert(s);
    await drain(s);
    await expectBlocked(s, endpoint.id);
    expectUntouched(r);
  });

  it('reaches ::1 when ::1/128 is the allowed range, and then blocks 127.0.0.1', async () => {
    const v6 = await receiver({ host: '::1' });
    const v4 = await receiver({ host: '127.0.0.1' });
    const s = await server({ env: { ALERTS_WEBHOOK_ALLOWED_CIDRS: '::1/128' } });
    const good = await createEndpoint(s, { url: v6.url, name: 'v6' });
    const bad = await createEndpoint(s, { url: v4.url, name: 'v4' });
    await triggerAlert(s);
    await drain(s);
    expect((await onlyDelivery(s, good.id)).status).toBe('delivered');
    expectVerifiedWebhook(v6.requests[0]!, good.secret);
    await expectBlocked(s, bad.id);
    expectUntouched(v4);
  });

  it('POST .../test to a forbidden address answers blocked_address and sends nothing', async () => {
    const v4 = await receiver({ host: '127.0.0.2' });
    const v6 = await receiver({ host: '::1' });
    const s = await server({ lookup: loopbackLookup({ 'rebind.test': '127.0.0.2' }) });
    for (const url of [`https://127.0.0.2:${v4.port}/hook`, `https://[::1]:${v6.port}/hook`, v4.urlFor('rebind.test')]) {
      const endpoint = await createEndpoint(s, { url, name: url });
      const res = await s.request('POST', `/v1/webhook-endpoints/${endpoint.id}/test`);
      expect(res.status, res.text).toBe(200);
      expect(res.body, url).toMatchObject({ delivered: false, status_code: null, error_class: 'blocked_address' });
    }
    expectUntouched(v4, v6);
  });
});

describe('what a tenant learns about host names', () => {
  it('never the address a name resolved to: not in /test answers, attempt records or last_error', async () => {
    const closed = await closedPort();
    const v4 = await receiver({ host: '127.0.0.2' });
    const s = await server({ lookup: loopbackLookup({ 'internal-db.test': '127.0.0.2', 'internal-api.test': '127.0.0.1' }) });
    const blocked = await createEndpoint(s, { url: v4.urlFor('internal-db.test'), name: 'blocked' });
    const refused = await createEndpoint(s, { url: `https://internal-api.test:${closed}/hook`, name: 'refused' });
    const answers: string[] = [];
    for (const endpoint of [blocked, refused]) {
      const res = await s.request('POST', `/v1/webhook-endpoints/${endpoint.id}/test`);
      expect(res.status, res.text).toBe(200);
      answers.push(res.text);
    }
    expect(JSON.parse(answers[0]!)).toMatchObject({ delivered: false, error_class: 'blocked_address' });
    expect(JSON.parse(answers[1]!)).toMatchObject({ delivered: false, error_class: 'connect_refused' });
    await triggerAlert(s);
    await drain(s);
    for (const endpoint of [blocked, refused]) answers.push(JSON.stringify(await onlyDelivery(s, endpoint.id)));
    for (const text of answers) {
      expect(text).not.toMatch(/127\.0\.0\.[12]/);
    }
    expectUntouched(v4);
  });
});

describe('the address guard', () => {
  const guard = createAddressGuard();
  const refused: [string, RegExp][] = [
    // IPv4 inside IPv6, in every notation: judged by the IPv4 address, or refused outright.
    ['::7f00:2', /IPv4-compatible/],
    ['::127.0.0.2', /IPv4-compatible/],
    ['::808:808', /IPv4-compatible/],
    ['0:0:0:0:0:0:7f00:1', /IPv4-compatible/],
    ['::ffff:7f00:2', /loopback/],
    ['::ffff:127.0.0.2', /loopback/],
    ['0:0:0:0:0:ffff:a00:1', /private/],
    ['::FFFF:A9FE:A9FE', /link-local/],
    ['::ffff:0:7f00:1', /loopback/],
    ['64:ff9b::7f00:1', /loopback/],
    ['64:ff9b::169.254.169.254', /link-local/],
    // Tunnels and translators to IPv4 anywhere.
    ['2002:7f00:1::1', /6to4/],
    ['2002:808:808::', /6to4/],
    ['64:ff9b:1::7f00:1', /local-use NAT64/],
    ['64:ff9b:1:ffff::808:808', /local-use NAT64/],
    ['2001::1', /Teredo/],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', /Teredo/],
    ['3fff::1', /documentation/],
    // Unchanged.
    ['::1', /loopback/],
    ['::', /unspecified/],
    ['127.0.0.1', /loopback/],
    ['fd00:ec2::254', /unique-local/],
  ];
  it.each(refused)('refuses %s', (address, reason) => {
    expect(guard.refusal(address)).toMatch(reason);
    expect(guard.refusal(`[${address}]`)).toMatch(reason);
  });

  it.each(['8.8.8.8', '::ffff:8.8.8.8', '::ffff:808:808', '64:ff9b::808:808', '2606:4700:4700::1111', '2001:4860:4860::8888', '2003::1'])(
    'lets %s through',
    (address) => {
      expect(guard.refusal(address)).toBeUndefined();
    },
  );

  it('opens an embedded IPv4 address when its IPv4 range is allowed, but never through a tunnel range', () => {
    const loopbackAllowed = createAddressGuard(['127.0.0.0/8']);
    expect(loopbackAllowed.refusal('::ffff:7f00:1')).toBeUndefined();
    expect(loopbackAllowed.refusal('64:ff9b::7f00:1')).toBeUndefined();
    expect(loopbackAllowed.refusal('::7f00:1')).toMatch(/IPv4-compatible/);
    expect(loopbackAllowed.refusal('2002:7f00:1::1')).toMatch(/6to4/);
    expect(createAddressGuard(['2002::/16']).refusal('2002:7f00:1::1')).toBeUndefined();
  });
});

describe('forbidden IPv6 forms over HTTP', () => {
  it('POST .../test to an IPv4-compatible, 6to4, local-use NAT64 or Teredo literal answers blocked_address', async () => {
    const s = await server({ env: {} });
    for (const host of ['[::7f00:2]', '[::127.0.0.2]', '[2002:7f00:2::1]', '[64:ff9b:1::7f00:2]', '[2001:0:7f00:2::1]']) {
      const endpoint = await createEndpoint(s, { url: `https://${host}:8443/hook`, name: host, timeout_ms: 1000 });
      const res = await s.request('POST', `/v1/webhook-endpoints/${endpoint.id}/test`);
      expect(res.status, res.text).toBe(200);
      expect(res.body, host).toMatchObject({ delivered: false, status_code: null, error_class: 'blocked_address' });
    }
  });

  it('records a delivery to an IPv4-compatible literal as blocked_address, not retried', async () => {
    const s = await server({ env: {} });
    const endpoint = await createEndpoint(s, { url: 'https://[::7f00:2]:8443/hook', timeout_ms: 1000 });
    await triggerAlert(s);
    await drain(s);
    await expectBlocked(s, endpoint.id);
  });
});

describe('transport', () => {
  it('refuses URLs that are not https://', async () => {
    const s = await server();
    const port = await closedPort();
    for (const url of [`http://127.0.0.1:${port}/hook`, `ftp://127.0.0.1:${port}/hook`]) {
      const res = await s.request('POST', '/v1/webhook-endpoints', { body: endpointBody({ url }) });
      expect(res.status, url).toBe(400);
    }
  });

  it('checks the certificate name: a name the certificate does not carry fails as tls, with no request sent', async () => {
    const r = await receiver({ host: '127.0.0.1' });
    const s = await server({ lookup: loopbackLookup({ 'not-in-the-certificate.invalid': '127.0.0.1' }) });
    const endpoint = await createEndpoint(s, { url: r.urlFor('not-in-the-certificate.invalid') });
    await triggerAlert(s);
    await drain(s);
    const delivery = await onlyDelivery(s, endpoint.id);
    expect(delivery.attempts[0]).toMatchObject({ status_code: null, error_class: 'tls' });
    // A network error: retried on the schedule.
    expect(delivery).toMatchObject({ status: 'pending', attempt_count: 1 });
    expect(r.requests).toHaveLength(0);
  });

  it('reports an unknown host name as a DNS failure without asking real DNS', async () => {
    const lookup = loopbackLookup({});
    const s = await server({ lookup });
    const endpoint = await createEndpoint(s, { url: 'https://no-such-host.invalid/hook' });
    await triggerAlert(s);
    await drain(s);
    const delivery = await onlyDelivery(s, endpoint.id);
    expect(delivery.attempts[0]).toMatchObject({ status_code: null, error_class: 'dns' });
    expect(delivery.status).toBe('pending');
    expect(lookup.calls).toEqual(['no-such-host.invalid']);
  });
});

describe('secrets', () => {
  it('never appear in attempt records, delivery listings, test results, error messages or logs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'alerts-secrets-'));
    const logs: string[] = [];
    const clock = testClock(START);
    const config = loadConfig({
      DATABASE_URL: await databaseUrlFor(dir),
      LOG_LEVEL: 'trace',
      ALERTS_EVALUATION_INTERVAL_MS: '0',
      ALERTS_DELIVERY_WORKER: 'off',
      ...ONLY_127_0_0_1,
    });
    const service = await createService({
      config,
      logger: createLogger('trace', { write: (line: string) => void logs.push(line) }),
      clock,
      lookup: loopbackLookup({ 'rebind.test': '127.0.0.2', 'wrong-name.invalid': '127.0.0.1' }),
    });
    cleanups.push(async () => {
      await service.close();
      rmSync(dir, { recursive: true, force: true });
      await dropDatabaseFor(dir);
    });
    const key = (await service.apiKeys.create('acme')).key;
    const texts: string[] = [];
    const call = async (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: unknown) => {
      const res = await service.app.inject({ method, url, headers: { 'x-api-key': key }, ...(payload === undefined ? {} : { payload: payload as object }) });
      return { status: res.statusCode, body: res.body === '' ? undefined : res.json(), text: res.body };
    };

    // Receivers that fail in every way that produces an error text, echoing what they got.
    const echo = await receiver({ host: '127.0.0.1' });
    echo.setDefault((request) => ({ status: 500, body: JSON.stringify({ headers: request.headers, body: request.body.toString() }) }));
    const forbidden = await receiver({ host: '127.0.0.2' });
    const hanging = await receiver({ host: '127.0.0.1' });
    hanging.setDefault({ hang: true });
    const port = await closedPort();
    const urls = [
      echo.url,
      `https://127.0.0.2:${forbidden.port}/hook`,
      forbidden.urlFor('rebind.test'),
      hanging.url,
      `https://127.0.0.1:${port}/hook`,
      echo.urlFor('wrong-name.invalid'),
    ];
    const secrets: string[] = [];
    const endpoints: string[] = [];
    for (const [i, url] of urls.entries()) {
      const created = await call('POST', '/v1/webhook-endpoints', endpointBody({ url, name: `e${i}`, timeout_ms: 1000 }));
      expect(created.status, created.text).toBe(201);
      secrets.push(created.body.signing_secret);
      endpoints.push(created.body.id);
    }
    expect((await call('POST', '/v1/alert-rules', ruleBodyForErrors())).status).toBe(201);
    expect((await call('POST', '/v1/telemetry/events', { events: [{ type: 'api_error', project_id: PROJECT }] })).status).toBe(202);
    await service.deliveryWorker.drain();

    // Rotate every secret mid-retry and fail again with the new ones.
    for (const id of endpoints) {
      const rotated = await call('POST', `/v1/webhook-endpoints/${id}/rotate-secret`);
      expect(rotated.status).toBe(200);
      secrets.push(rotated.body.signing_secret);
    }
    clock.advance(60_000);
    await service.deliveryWorker.drain();
    for (const id of endpoints) texts.push((await call('POST', `/v1/webhook-endpoints/${id}/test`)).text);
    for (const id of endpoints) {
      const listed = await call('GET', `/v1/webhook-endpoints/${id}/deliveries`);
      expect(listed.status).toBe(200);
      expect(listed.body.data[0].attempt_count).toBeGreaterThanOrEqual(1);
      texts.push(listed.text);
    }
    texts.push((await call('GET', '/v1/webhook-endpoints')).text);

    // Every error class appeared, and the echo receiver saw (and returned) real signatures.
    const classes = new Set(texts.join('\n').match(/"error_class":"[a-z_]+"/g));
    for (const errorClass of ['blocked_address', 'timeout', 'connect_refused', 'tls']) expect(classes).toContain(`"error_class":"${errorClass}"`);
    expect(echo.requests.length).toBeGreaterThanOrEqual(2);

    const db = service.store.db;
    const attempts = await sql`select * from webhook_attempts`.execute(db);
    const deliveries = await sql`select * from webhook_deliveries`.execute(db);
    expect(attempts.rows.length).toBeGreaterThanOrEqual(endpoints.length);
    const stored = JSON.stringify([attempts.rows, deliveries.rows]);
    expect(logs.length).toBeGreaterThan(0);
    expect(logs.join('\n')).toContain('webhook attempt failed');
    for (const secret of secrets) {
      // The whole secret, and its random part alone (without the whsec_ prefix).
      for (const needle of [secret, secret.replace(/^whsec_/, '')]) {
        expect(stored.includes(needle), 'secret in attempt or delivery records').toBe(false);
        for (const text of texts) expect(text.includes(needle), 'secret in an API answer').toBe(false);
        expect(logs.some((line) => line.includes(needle)), 'secret in the logs').toBe(false);
      }
    }
  });

  it('are not in the webhook itself: the body carries no secret, only the signature depends on it', async () => {
    const clock = testClock(START);
    const r = await receiver();
    const s = await server({ clock });
    const endpoint = await createEndpoint(s, { url: r.url });
    await triggerAlert(s);
    await drain(s);
    await resolveAlerts(s, clock);
    await drain(s);
    expect(r.requests).toHaveLength(2);
    for (const request of r.requests) {
      expectVerifiedWebhook(request, endpoint.secret);
      const raw = request.body.toString() + JSON.stringify(request.headers);
      expect(raw.includes(endpoint.secret)).toBe(false);
      expect(raw.includes(endpoint.secret.replace(/^whsec_/, ''))).toBe(false);
    }
    expect((await listDeliveries(s, endpoint.id)).every((d) => d.status === 'delivered')).toBe(true);
  });
});
