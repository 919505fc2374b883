import { get as httpsGet } from 'node:https';
import { sql } from 'kysely';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { closedPort, startHttpsReceiver, testTls, type HttpsReceiver } from './helpers/https-receiver.js';
import { startTestServer, testClock, type TestServer } from './helpers/server.js';
import {
  createEndpoint,
  createErrorRule,
  eventually,
  expectVerifiedWebhook,
  headerCount,
  listDeliveries,
  onlyDelivery,
  PROJECT,
  resolveAlerts,
  sendApiError,
  signatureMatches,
  sleep,
  triggerAlert,
} from './helpers/webhook-fixtures.js';

/**
 * Webhook delivery against real HTTPS receivers on 127.0.0.1 whose certificate comes from
 * a CA made for this run and trusted through NODE_EXTRA_CA_CERTS (test/global-setup.ts).
 * Events come the real way: telemetry crosses a rule's threshold, or the clock moves the
 * window past it. Unless a test says otherwise the worker does not run by itself: the test
 * moves the injected clock and calls drain(), which sends everything due now and waits.
 */

const START = Date.parse('2026-03-15T10:30:00.000Z');
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const ALLOW_RECEIVERS = { ALERTS_WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32' };

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function server(options: { env?: Record<string, string>; clock?: ReturnType<typeof testClock> | null } = {}) {
  const clock = options.clock === null ? undefined : (options.clock ?? testClock(START));
  const s = await startTestServer({ clock, env: { ...ALLOW_RECEIVERS, ...options.env } });
  cleanups.push(() => s.close());
  return s;
}

async function receiver(options: { host?: string; port?: number } = {}): Promise<HttpsReceiver> {
  const r = await startHttpsReceiver(options);
  cleanups.push(() => r.close());
  return r;
}

const drain = (s: TestServer) => s.service.deliveryWorker.drain();
const iso = (ms: number) => new Date(ms).toISOString();

describe('test TLS set-up', () => {
  it('this worker trusts the throwaway CA through NODE_EXTRA_CA_CERTS alone', async () => {
    expect(process.env.NODE_EXTRA_CA_CERTS).toBe(testTls().caPath);
    const r = await receiver();
    r.enqueue({ status: 200, body: 'hello' });
    // Default options: no `ca`, no agent; a failed chain or name check would reject.
    const text = await new Promise<string>((resolve, reject) => {
      httpsGet(r.url, (res) => {
        let data = '';
        res.on('data', (chunk: Buffer) => (data += chunk.toString()));
        res.on('end', () => resolve(data));
      }).on('error', reject);
    });
    expect(text).toBe('hello');
  });
});

describe('a delivered webhook', () => {
  it('is signed as documented (checked independently), with our headers and a published WebhookEvent body', async () => {
    const clock = testClock(START);
    const s = await server({ clock });
    const r = await receiver();
    const endpoint = await createEndpoint(s, { url: r.url });
    const rule = await triggerAlert(s);
    await drain(s);

    expect(r.requests).toHaveLength(1);
    const request = r.requests[0]!;
    expect(request.path).toBe('/hook');
    const webhook = expectVerifiedWebhook(request, endpoint.secret);
    // A wrong secret does not verify.
    expect(signatureMatches(request, endpoint.secret + 'x')).toBe(false);
    expect(webhook.body).toMatchObject({
      event_type: 'alerts.triggered',
      alert: {
        id: rule.id,
        name: 'API errors',
        project_id: PROJECT,
        metric: 'api_errors',
        operator: '>=',
        threshold_value: 1,
        current_value: 1,
        previous_state: 'no_data',
        triggered_at: iso(START),
      },
    });

    const delivery = await onlyDelivery(s, endpoint.id);
    expect(delivery).toMatchObject({ event_id: webhook.eventId, event_type: 'alerts.triggered', status: 'delivered', attempt_count: 1, next_attempt_at: null });
    expect(delivery.attempts).toHaveLength(1);
    expect(delivery.attempts[0]).toMatchObject({ attempt: 1, status_code: 200, error_class: null });
    // The timestamp is this attempt's time (the injected clock), in Unix seconds.
    expect(Math.abs(webhook.timestamp - Date.parse(delivery.attempts[0].started_at) / 1000)).toBeLessThanOrEqual(2);
  });

  it('carries the timestamp of the real clock when the service runs on it', async () => {
    const s = await server({ clock: null });
    const r = await receiver();
    const endpoint = await createEndpoint(s, { url: r.url });
    await triggerAlert(s);
    await drain(s);
    const [request] = await r.waitFor(1);
    const { timestamp } = expectVerifiedWebhook(request!, endpoint.secret);
    expect(Math.abs(timestamp - request!.receivedAt / 1000)).toBeLessThanOrEqual(3);
  });

  it("sends the endpoint's custom headers, which cannot override ours", async () => {
    const s = await server();
    const r = await receiver();
    const endpoint = await createEndpoint(s, {
      url: r.url,
      headers: {
        'X-Custom-Header': 'my-value',
        Authorization: 'Bearer receiver-token',
        'X-PolyAI-Signature': 'forged',
        'x-polyai-event-id': 'evt_forged',
        'X-POLYAI-TIMESTAMP': '1',
        'Content-Type': 'text/plain',
      },
    });
    await triggerAlert(s);
    await drain(s);
    const [request] = await r.waitFor(1);
    expect(request!.headers['x-custom-header']).toBe('my-value');
    expect(request!.headers.authorization).toBe('Bearer receiver-token');
    expect(headerCount(request!, 'x-custom-header')).toBe(1);
    const webhook = expectVerifiedWebhook(request!, endpoint.secret);
    expect(webhook.eventId).not.toBe('evt_forged');
    expect(webhook.timestamp).not.toBe(1);
    expect((await onlyDelivery(s, endpoint.id)).status).toBe('delivered');
  });

  it('keeps the raw body bytes and the event id on every attempt, with a fresh timestamp and signature each time', async () => {
    const clock = testClock(START);
    const s = await server({ clock });
    const r = await receiver();
    r.enqueue({ status: 500 }, { status: 503 });
    const endpoint = await createEndpoint(s, { url: r.url });
    await triggerAlert(s);
    await drain(s);
    clock.advance(MINUTE);
    await drain(s);
    clock.advance(5 * MINUTE);
    await drain(s);

    const requests = await r.waitFor(3);
    expect(requests).toHaveLength(3);
    const verified = requests.map((request) => expectVerifiedWebhook(request, endpoint.secret));
    for (const request of requests) expect(request.body.equals(requests[0]!.body)).toBe(true);
    expect(new Set(verified.map((v) => v.eventId)).size).toBe(1);
    expect(verified.map((v) => v.timestamp - verified[0]!.timestamp)).toEqual([0, 60, 360]);
    expect(new Set(requests.map((q) => q.headers['x-polyai-signature'])).size).toBe(3);

    const delivery = await onlyDelivery(s, endpoint.id);
    expect(delivery).toMatchObject({ event_id: verified[0]!.eventId, status: 'delivered', attempt_count: 3 });
  });
});

describe('retries', () => {
  it.each([500, 502, 503, 429, 408])('retries after HTTP %i, then delivers', async (status) => {
    const clock = testClock(START);
    const s = await server({ clock });
    const r = await receiver();
    r.enqueue({ status, body: 'try later' });
    const endpoint = await createEndpoint(s, { url: r.url });
    await triggerAlert(s);
    await drain(s);

    let delivery = await onlyDelivery(s, endpoint.id);
    expect(delivery).toMatchObject({ status: 'pending', attempt_count: 1, next_attempt_at: iso(START + MINUTE), last_error: `HTTP ${status}` });
    expect(delivery.attempts[0]).toMatchObject({ attempt: 1, status_code: status, error_class: null, response_body: 'try later' });

    clock.advance(MINUTE);
    await drain(s);
    delivery = await onlyDelivery(s, endpoint.id);
    expect(delivery).toMatchObject({ status: 'delivered', attempt_count: 2, next_attempt_at: null, last_error: null });
    expect(delivery.attempts.map((a: any) => a.status_code)).toEqual([status, 200]);
    expect(r.requests).toHaveLength(2);
  });

  it('retries after a timeout (the receiver hangs beyond timeout_ms)', async () => {
    const clock = testClock(START);
    const s = await server({ clock });
    const r = await receiver();
    r.enqueue({ hang: true });
    const endpoint = await createEndpoint(s, { url: r.url, timeout_ms: 1000 });
    await triggerAlert(s);
    const started = performance.now();
    await drain(s);
    const took = performance.now() - started;
    expect(took).toBeGreaterThanOrEqual(950);
    expect(took).toBeLessThan(5000);

    let delivery = await onlyDelivery(s, endpoint.id);
    expect(delivery).toMatchObject({ status: 'pending', attempt_count: 1, next_attempt_at: iso(START + MINUTE) });
    expect(delivery.attempts[0]).toMatchObject({ status_code: null, error_class: 'timeout' });
    expect(delivery.attempts[0].duration_ms).toBeGreaterThanOrEqual(950);

    clock.advance(MINUTE);
    await drain(s);
    delivery = await onlyDelivery(s, endpoint.id);
    expect(delivery).toMatchObject({ status: 'delivered', attempt_count: 2 });
    expect(r.requests).toHaveLength(2);
  });

  it('counts a response that starts in time but finishes after timeout_ms as a timeout', async () => {
    const clock = testClock(START);
    const s = await server({ clock });
    const r = await receiver();
    r.enqueue({ status: 200, delayMs: 1500 });
    const endpoint = await createEndpoint(s, { url: r.url, timeout_ms: 1000 });
    await triggerAlert(s);
    await drain(s);
    const delivery = await onlyDelivery(s, endpoint.id);
    expect(delivery).toMatchObject({ status: 'pending', attempt_count: 1 });
    expect(delivery.attempts[0]).toMatchObject({ status_code: null, error_class: 'timeout' });
  });

  it('retries when the connection is refused (nothing listens), and delivers once a receiver is up', async () => {
    const clock = testClock(START);
    const s = await server({ clock });
    const port = await closedPort();
    const endpoint = await createEndpoint(s, { url: `https://127.0.0.1:${port}/hook` });
    await triggerAlert(s);
    await drain(s);

    let delivery = await onlyDelivery(s, endpoint.id);
    expect(delivery).toMatchObject({ status: 'pending', attempt_count: 1, next_attempt_at: iso(START + MINUTE) });
    expect(delivery.attempts[0]).toMatchObject({ status_code: null, error_class: 'connect_refused' });

    const r = await receiver({ port });
    clock.advance(MINUTE);
    await drain(s);
    delivery = await onlyDelivery(s, endpoint.id);
    expect(delivery).toMatchObject({ status: 'delivered', attempt_count: 2 });
    expectVerifiedWebhook(r.requests[0]!, endpoint.secret);
  });

  it('retries when the receiver drops the connection without answering', async () => {
    const clock = testClock(START);
    const s = await server({ clock });
    const r = await receiver();
    r.enqueue({ close: true });
    const endpoint = await createEndpoint(s, { url: r.url });
    await triggerAlert(s);
    await drain(s);
    let delivery = await onlyDelivery(s, endpoint.id);
    expect(delivery).toMatchObject({ status: 'pending', attempt_count: 1 });
    expect(delivery.attempts[0].status_code).toBeNull();
    expect(delivery.attempts[0].error_class).toMatch(/^(reset|network)$/);

    clock.advance(MINUTE);
    await drain(s);
    delivery = await onlyDelivery(s, endpoint.id);
    expect(delivery).toMatchObject({ status: 'delivered', attempt_count: 2 });
  });

  it('records only the first 1 KiB of a response body', async () => {
    const s = await server();
    const r = await receiver();
    r.enqueue({ status: 500, body: 'x'.repeat(64 * 1024) });
    const endpoint = await createEndpoint(s, { url: r.url });
    await triggerAlert(s);
    await drain(s);
    const delivery = await onlyDelivery(s, endpoint.id);
    expect(delivery.attempts[0].status_code).toBe(500);
    expect(delivery.attempts[0].response_body).toBe('x'.repeat(1024));
  });

  it.each([400, 401, 404, 410, 422])('does not retry after HTTP %i', async (status) => {
    const clock = testClock(START);
    const s = await server({ clock });
    const r = await receiver();
    r.setDefault({ status });
    const endpoint = await createEndpoint(s, { url: r.url });
    await triggerAlert(s);
    await drain(s);

    const delivery = await onlyDelivery(s, endpoint.id);
    expect(delivery).toMatchObject({ status: 'failed', attempt_count: 1, next_attempt_at: null, last_error: `HTTP ${status}` });
    clock.advance(6 * HOUR);
    await drain(s);
    expect(r.requests).toHaveLength(1);
    expect((await onlyDelivery(s, endpoint.id)).attempt_count).toBe(1);
  });

  it.each([301, 302, 307, 308])('does not follow a %i redirect, and does not retry it', async (status) => {
    const clock = testClock(START);
    const s = await server({ clock });
    const r = await receiver();
    const target = await receiver();
    r.setDefault({ status, headers: { location: target.url } });
    const endpoint = await createEndpoint(s, { url: r.url });
    await triggerAlert(s);
    await drain(s);

    const delivery = await onlyDelivery(s, endpoint.id);
    expect(delivery).toMatchObject({ status: 'failed', attempt_count: 1, next_attempt_at: null });
    expect(delivery.attempts[0].status_code).toBe(status);
    clock.advance(6 * HOUR);
    await drain(s);
    expect(r.requests).toHaveLength(1);
    expect(target.requests).toHaveLength(0);
    expect(target.connections).toBe(0);
  });

  it('runs by itself on a short ALERTS_RETRY_SCHEDULE: retries with the configured gaps, then delivers', async () => {
    const s = await server({ clock: null, env: { ALERTS_DELIVERY_WORKER: 'on', ALERTS_RETRY_SCHEDULE: '0,50ms,100ms' } });
    const r = await receiver();
    r.enqueue({ status: 500 }, { status: 429 });
    const endpoint = await createEndpoint(s, { url: r.url });
    await triggerAlert(s);
    const requests = await r.waitFor(3);
    const delivery = await eventually(
      () => onlyDelivery(s, endpoint.id),
      (d) => d.status === 'delivered',
    );
    expect(delivery.attempts.map((a: any) => a.status_code)).toEqual([500, 429, 200]);
    expect(requests[1]!.receivedAt - requests[0]!.receivedAt).toBeGreaterThanOrEqual(45);
    expect(requests[2]!.receivedAt - requests[1]!.receivedAt).toBeGreaterThanOrEqual(95);
    for (const request of requests) expectVerifiedWebhook(request, endpoint.secret);
  });

  it('gives up after the last attempt of a short ALERTS_RETRY_SCHEDULE and keeps the failed delivery', async () => {
    const s = await server({ clock: null, env: { ALERTS_DELIVERY_WORKER: 'on', ALERTS_RETRY_SCHEDULE: '0,50ms,50ms' } });
    const r = await receiver();
    r.setDefault({ status: 500 });
    const endpoint = await createEndpoint(s, { url: r.url });
    await triggerAlert(s);
    const delivery = await eventually(
      () => onlyDelivery(s, endpoint.id),
      (d) => d.status === 'failed',
    );
    expect(delivery).toMatchObject({ attempt_count: 3, next_attempt_at: null, last_error: 'HTTP 500' });
    await sleep(300);
    expect(r.requests).toHaveLength(3);
  });
});

describe('the documented retry schedule (accelerated clock)', () => {
  it('attempts at 0, +1 min, +5 min, +15 min, +1 h and +4 h after each failure, then fails, keeps the delivery and can re-send it', async () => {
    const clock = testClock(START);
    const s = await server({ clock });
    const r = await receiver();
    r.setDefault({ status: 503 });
    const endpoint = await createEndpoint(s, { url: r.url });
    await triggerAlert(s);

    const delays = [0, MINUTE, 5 * MINUTE, 15 * MINUTE, HOUR, 4 * HOUR];
    let expectedAt = START;
    for (const [index, delay] of delays.entries()) {
      const attempt = index + 1;
      expectedAt += delay;
      if (delay > 0) {
        // One millisecond early: nothing is due yet.
        clock.set(expectedAt - 1);
        await drain(s);
        expect(r.requests, `attempt ${attempt} not before its time`).toHaveLength(attempt - 1);
        clock.set(expectedAt);
      }
      await drain(s);
      expect(r.requests, `attempt ${attempt} at +${(expectedAt - START) / MINUTE} min`).toHaveLength(attempt);
      const delivery = await onlyDelivery(s, endpoint.id);
      expect(delivery.attempt_count).toBe(attempt);
      expect(delivery.attempts.map((a: any) => a.started_at)).toEqual(
        delays.slice(0, attempt).map((_, i) => iso(START + delays.slice(0, i + 1).reduce((sum, d) => sum + d, 0))),
      );
      const next = delays[attempt];
      if (next !== undefined) {
        expect(delivery).toMatchObject({ status: 'pending', next_attempt_at: iso(expectedAt + next), last_error: 'HTTP 503' });
      } else {
        expect(delivery).toMatchObject({ status: 'failed', next_attempt_at: null, last_error: 'HTTP 503' });
      }
    }
    expect(expectedAt - START).toBe(MINUTE + 5 * MINUTE + 15 * MINUTE + HOUR + 4 * HOUR);

    // Failed, kept and visible; nothing more is sent however long we wait.
    clock.advance(48 * HOUR);
    await drain(s);
    expect(r.requests).toHaveLength(6);
    const failed = await listDeliveries(s, endpoint.id, '?status=failed');
    expect(failed).toHaveLength(1);
    const { id: deliveryId, event_id: eventId } = failed[0];
    expect(failed[0].attempts).toHaveLength(6);

    // Re-sent through the API: one more attempt, same event id and body, fresh signature.
    r.setDefault({ status: 200 });
    const retry = await s.request('POST', `/v1/webhook-endpoints/${endpoint.id}/deliveries/${deliveryId}/retry`);
    expect(retry.status, retry.text).toBe(202);
    expect(retry.body).toMatchObject({ id: deliveryId, event_id: eventId, status: 'pending' });
    await drain(s);
    expect(r.requests).toHaveLength(7);
    const requests = r.requests.map((request) => expectVerifiedWebhook(request, endpoint.secret));
    expect(new Set(requests.map((v) => v.eventId))).toEqual(new Set([eventId]));
    for (const request of r.requests) expect(request.body.equals(r.requests[0]!.body)).toBe(true);
    const delivered = await onlyDelivery(s, endpoint.id);
    expect(delivered).toMatchObject({ id: deliveryId, status: 'delivered', attempt_count: 7, next_attempt_at: null });
    expect(delivered.attempts.at(-1)).toMatchObject({ attempt: 7, status_code: 200, started_at: iso(clock.now()) });
  });

  it('re-sends a delivered event on request, with the same event id', async () => {
    const clock = testClock(START);
    const s = await server({ clock });
    const r = await receiver();
    const endpoint = await createEndpoint(s, { url: r.url });
    await triggerAlert(s);
    await drain(s);
    const delivery = await onlyDelivery(s, endpoint.id);
    expect(delivery.status).toBe('delivered');
    clock.advance(10 * MINUTE);
    const retry = await s.request('POST', `/v1/webhook-endpoints/${endpoint.id}/deliveries/${delivery.id}/retry`);
    expect(retry.status, retry.text).toBe(202);
    await drain(s);
    const [first, second] = await r.waitFor(2);
    expect(expectVerifiedWebhook(second!, endpoint.secret).eventId).toBe(expectVerifiedWebhook(first!, endpoint.secret).eventId);
    expect(second!.body.equals(first!.body)).toBe(true);
    expect((await onlyDelivery(s, endpoint.id)).attempt_count).toBe(2);
  });

  it('answers 404 for a delivery of another endpoint or account', async () => {
    const s = await server();
    const r = await receiver();
    const a = await createEndpoint(s, { url: r.url });
    const b = await createEndpoint(s, { url: r.url, name: 'other' });
    await triggerAlert(s);
    await drain(s);
    const delivery = (await listDeliveries(s, a.id))[0];
    const wrongEndpoint = await s.request('POST', `/v1/webhook-endpoints/${b.id}/deliveries/${delivery.id}/retry`);
    expect(wrongEndpoint.status).toBe(404);
    const otherKey = await s.newKey('other-account');
    const otherAccount = await s.request('POST', `/v1/webhook-endpoints/${a.id}/deliveries/${delivery.id}/retry`, { key: otherKey });
    expect(otherAccount.status).toBe(404);
    expect((await s.request('GET', `/v1/webhook-endpoints/${a.id}/deliveries`, { key: otherKey })).status).toBe(404);
  });
});

describe('signing secret rotation', () => {
  it('signs every attempt after rotate-secret with the new secret, mid-retry', async () => {
    const clock = testClock(START);
    const s = await server({ clock });
    const r = await receiver();
    r.enqueue({ status: 500 });
    const endpoint = await createEndpoint(s, { url: r.url });
    await triggerAlert(s);
    await drain(s);
    expect(r.requests).toHaveLength(1);
    expect(signatureMatches(r.requests[0]!, endpoint.secret)).toBe(true);

    const rotated = await s.request('POST', `/v1/webhook-endpoints/${endpoint.id}/rotate-secret`);
    expect(rotated.status).toBe(200);
    const newSecret = rotated.body.signing_secret as string;
    expect(newSecret).not.toBe(endpoint.secret);

    clock.advance(MINUTE);
    await drain(s);
    const [first, second] = await r.waitFor(2);
    expectVerifiedWebhook(second!, newSecret);
    expect(signatureMatches(second!, endpoint.secret)).toBe(false);
    expect(second!.headers['x-polyai-event-id']).toBe(first!.headers['x-polyai-event-id']);
    expect(second!.body.equals(first!.body)).toBe(true);
    expect((await onlyDelivery(s, endpoint.id)).status).toBe('delivered');
  });
});

describe('which endpoints receive an event', () => {
  it('sends nothing to a disabled endpoint and records no delivery for it', async () => {
    const s = await server();
    const on = await receiver();
    const off = await receiver();
    const enabled = await createEndpoint(s, { url: on.url, name: 'on' });
    const disabled = await createEndpoint(s, { url: off.url, name: 'off', enabled: false });
    await triggerAlert(s);
    await drain(s);
    expect(on.requests).toHaveLength(1);
    expectVerifiedWebhook(on.requests[0]!, enabled.secret);
    expect(off.requests).toHaveLength(0);
    expect(await listDeliveries(s, disabled.id)).toEqual([]);
  });

  it('sends nothing to an endpoint disabled after creation, and sends again once it is re-enabled', async () => {
    const clock = testClock(START);
    const s = await server({ clock });
    const r = await receiver();
    const endpoint = await createEndpoint(s, { url: r.url });
    const patch = await s.request('PATCH', `/v1/webhook-endpoints/${endpoint.id}`, { body: { enabled: false } });
    expect(patch.status).toBe(200);
    await triggerAlert(s);
    await drain(s);
    expect(r.requests).toHaveLength(0);
    expect(await listDeliveries(s, endpoint.id)).toEqual([]);

    expect((await s.request('PATCH', `/v1/webhook-endpoints/${endpoint.id}`, { body: { enabled: true } })).status).toBe(200);
    await resolveAlerts(s, clock);
    await drain(s);
    expect(r.requests).toHaveLength(1);
    expect(expectVerifiedWebhook(r.requests[0]!, endpoint.secret).body.event_type).toBe('alerts.resolved');
  });

  it('sends only the event types an endpoint subscribes to', async () => {
    const clock = testClock(START);
    const s = await server({ clock });
    const triggeredOnly = await receiver();
    const resolvedOnly = await receiver();
    const both = await receiver();
    const t = await createEndpoint(s, { url: triggeredOnly.url, event_types: ['alerts.triggered'] });
    const rs = await createEndpoint(s, { url: resolvedOnly.url, event_types: ['alerts.resolved'] });
    const b = await createEndpoint(s, { url: both.url });
    await triggerAlert(s);
    await drain(s);
    await resolveAlerts(s, clock);
    await drain(s);

    const types = (r: HttpsReceiver, secret: string) => r.requests.map((q) => expectVerifiedWebhook(q, secret).body.event_type);
    expect(types(triggeredOnly, t.secret)).toEqual(['alerts.triggered']);
    expect(types(resolvedOnly, rs.secret)).toEqual(['alerts.resolved']);
    expect(types(both, b.secret)).toEqual(['alerts.triggered', 'alerts.resolved']);
    expect((await listDeliveries(s, t.id)).map((d) => d.event_type)).toEqual(['alerts.triggered']);
    expect((await listDeliveries(s, rs.id)).map((d) => d.event_type)).toEqual(['alerts.resolved']);
  });

  it('holds the pending retries of an endpoint disabled mid-retry without spinning, and sends them once it is enabled again', async () => {
    const clock = testClock(START);
    // The real worker on the injected clock: retries fall due only when the test moves it.
    const s = await server({ clock, env: { ALERTS_DELIVERY_WORKER: 'on' } });
    const r = await receiver();
    r.enqueue({ status: 500 });
    const endpoint = await createEndpoint(s, { url: r.url });
    await triggerAlert(s);
    await eventually(
      () => onlyDelivery(s, endpoint.id),
      (d) => d.attempt_count === 1 && d.status === 'pending',
    );
    expect((await s.request('PATCH', `/v1/webhook-endpoints/${endpoint.id}`, { body: { enabled: false } })).status).toBe(200);

    // The retry is due while the endpoint is disabled: it is held, and the worker only looks
    // again at its poll interval (1 s) instead of claiming in a tight loop.
    clock.advance(2 * MINUTE);
    const claims = vi.spyOn(s.service.store.deliveries, 'claimDue');
    s.service.deliveryWorker.kick();
    await sleep(1200);
    expect(r.requests).toHaveLength(1);
    expect(claims.mock.calls.length).toBeLessThan(10);
    expect(await onlyDelivery(s, endpoint.id)).toMatchObject({ status: 'pending', attempt_count: 1 });

    expect((await s.request('PATCH', `/v1/webhook-endpoints/${endpoint.id}`, { body: { enabled: true } })).status).toBe(200);
    const delivery = await eventually(
      () => onlyDelivery(s, endpoint.id),
      (d) => d.status === 'delivered',
    );
    expect(delivery.attempt_count).toBe(2);
    expect(r.requests[1]!.headers['x-polyai-event-id']).toBe(r.requests[0]!.headers['x-polyai-event-id']);
  });

  it('keeps serving other endpoints, without spinning, while one endpoint has all its slots busy', async () => {
    const s = await server({
      clock: null,
      env: { ALERTS_DELIVERY_WORKER: 'on', ALERTS_DELIVERY_ENDPOINT_CONCURRENCY: '1', ALERTS_RETRY_SCHEDULE: '0,1m' },
    });
    const stuck = await receiver();
    const healthy = await receiver();
    stuck.setDefault({ hang: true });
    // Its attempts hang for up to 5 s (ended early when the test closes the receiver).
    await createEndpoint(s, { url: stuck.url, name: 'stuck', timeout_ms: 5000 });
    const good = await createEndpoint(s, { url: healthy.url, name: 'healthy' });
    // Two rules fire together: two deliveries to each endpoint; the stuck one's only slot
    // is taken by its first, so its second is due but waits.
    await createErrorRule(s, { name: 'first' });
    await createErrorRule(s, { name: 'second' });
    const claims = vi.spyOn(s.service.store.deliveries, 'claimDue');
    await sendApiError(s);
    const [first] = await stuck.waitFor(1);
    for (const request of await healthy.waitFor(2)) {
      expectVerifiedWebhook(request, good.secret);
      expect(request.receivedAt - first!.receivedAt).toBeLessThan(4000);
    }
    await sleep(Math.max(0, first!.receivedAt + 1000 - Date.now()));
    expect(stuck.requests).toHaveLength(1);
    expect(claims.mock.calls.length).toBeLessThan(20);
  });

  it('cancels a delivery that is in flight when its endpoint is deleted: it is not rescheduled', async () => {
    const clock = testClock(START);
    const s = await server({ clock });
    const r = await receiver();
    r.setDefault({ status: 500, delayMs: 300 });
    const endpoint = await createEndpoint(s, { url: r.url });
    await triggerAlert(s);
    const draining = drain(s);
    await r.waitFor(1);
    expect((await s.request('DELETE', `/v1/webhook-endpoints/${endpoint.id}`)).status).toBe(204);
    await draining;

    const rows = await sql<{ status: string; next_attempt_at: unknown }>`
      select status, next_attempt_at from webhook_deliveries where endpoint_id = ${endpoint.id}`.execute(s.service.store.db);
    expect(rows.rows).toEqual([{ status: 'cancelled', next_attempt_at: null }]);
    clock.advance(6 * HOUR);
    await drain(s);
    expect(r.requests).toHaveLength(1);
  });

  it("sends nothing to another account's endpoints", async () => {
    const s = await server();
    const mine = await receiver();
    const theirs = await receiver();
    const otherKey = await s.newKey('other-account');
    await createEndpoint(s, { url: mine.url });
    await createEndpoint(s, { url: theirs.url }, otherKey);
    await triggerAlert(s);
    await drain(s);
    expect(mine.requests).toHaveLength(1);
    expect(theirs.requests).toHaveLength(0);
  });

  it('cancels the pending deliveries of a deleted endpoint; other endpoints carry on', async () => {
    const clock = testClock(START);
    const s = await server({ clock });
    const doomed = await receiver();
    const kept = await receiver();
    doomed.setDefault({ status: 500 });
    kept.enqueue({ status: 500 });
    const d = await createEndpoint(s, { url: doomed.url, name: 'doomed' });
    const k = await createEndpoint(s, { url: kept.url, name: 'kept' });
    await triggerAlert(s);
    await drain(s);
    expect((await onlyDelivery(s, d.id)).status).toBe('pending');

    expect((await s.request('DELETE', `/v1/webhook-endpoints/${d.id}`)).status).toBe(204);
    expect((await s.request('GET', `/v1/webhook-endpoints/${d.id}/deliveries`)).status).toBe(404);
    const rows = await sql<{ status: string; next_attempt_at: unknown }>`
      select status, next_attempt_at from webhook_deliveries where endpoint_id = ${d.id}`.execute(s.service.store.db);
    expect(rows.rows).toEqual([{ status: 'cancelled', next_attempt_at: null }]);

    clock.advance(6 * HOUR);
    await drain(s);
    await drain(s);
    expect(doomed.requests).toHaveLength(1);
    expect(kept.requests).toHaveLength(2);
    expect((await onlyDelivery(s, k.id)).status).toBe('delivered');
  });
});

describe('POST /v1/webhook-endpoints/{id}/test', () => {
  it('sends a signed sample alerts.triggered marked as a test, and answers with the outcome', async () => {
    const s = await server();
    const r = await receiver();
    r.enqueue({ status: 204 });
    const endpoint = await createEndpoint(s, { url: r.url, headers: { 'X-Custom-Header': 'my-value' } });
    const res = await s.request('POST', `/v1/webhook-endpoints/${endpoint.id}/test`);
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ delivered: true, status_code: 204, error_class: null, error: null });
    expect(r.requests).toHaveLength(1);
    const webhook = expectVerifiedWebhook(r.requests[0]!, endpoint.secret);
    expect(webhook.eventId).toBe(res.body.event_id);
    expect(webhook.body).toMatchObject({ event_type: 'alerts.triggered', test: true });
    expect(r.requests[0]!.headers['x-custom-header']).toBe('my-value');
    // A single attempt, not a delivery: nothing recorded, nothing retried.
    expect(await listDeliveries(s, endpoint.id)).toEqual([]);
  });

  it('reports a failing receiver: status, response body, no retry', async () => {
    const clock = testClock(START);
    const s = await server({ clock });
    const r = await receiver();
    r.setDefault({ status: 500, body: 'receiver is down' });
    const endpoint = await createEndpoint(s, { url: r.url });
    const res = await s.request('POST', `/v1/webhook-endpoints/${endpoint.id}/test`);
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ delivered: false, status_code: 500, response_body: 'receiver is down' });
    clock.advance(HOUR);
    await drain(s);
    expect(r.requests).toHaveLength(1);
  });

  it('reports a timeout and a refused connection', async () => {
    const s = await server();
    const r = await receiver();
    r.setDefault({ hang: true });
    const slow = await createEndpoint(s, { url: r.url, timeout_ms: 1000 });
    const timedOut = await s.request('POST', `/v1/webhook-endpoints/${slow.id}/test`);
    expect(timedOut.body).toMatchObject({ delivered: false, status_code: null, error_class: 'timeout' });
    expect(timedOut.body.duration_ms).toBeGreaterThanOrEqual(950);

    const port = await closedPort();
    const closed = await createEndpoint(s, { url: `https://127.0.0.1:${port}/hook`, name: 'closed' });
    const refused = await s.request('POST', `/v1/webhook-endpoints/${closed.id}/test`);
    expect(refused.body).toMatchObject({ delivered: false, status_code: null, error_class: 'connect_refused' });
  });

  it('answers 404 for another account', async () => {
    const s = await server();
    const r = await receiver();
    const endpoint = await createEndpoint(s, { url: r.url });
    const res = await s.request('POST', `/v1/webhook-endpoints/${endpoint.id}/test`, { key: await s.newKey('other-account') });
    expect(res.status).toBe(404);
    expect(r.requests).toHaveLength(0);
  });
});

describe('GET /v1/webhook-endpoints/{id}/deliveries', () => {
  it('filters by status and by event_type', async () => {
    const clock = testClock(START);
    const s = await server({ clock });
    const r = await receiver();
    // Triggered is accepted, resolved is refused for good.
    r.setDefault((request) => (JSON.parse(request.body.toString()).event_type === 'alerts.resolved' ? { status: 404 } : { status: 200 }));
    const endpoint = await createEndpoint(s, { url: r.url });
    await triggerAlert(s);
    await drain(s);
    await resolveAlerts(s, clock);
    await drain(s);

    const all = await listDeliveries(s, endpoint.id);
    expect(all.map((d) => [d.event_type, d.status])).toEqual([
      ['alerts.resolved', 'failed'],
      ['alerts.triggered', 'delivered'],
    ]);
    const pick = async (query: string) => (await listDeliveries(s, endpoint.id, query)).map((d) => d.event_type);
    expect(await pick('?status=delivered')).toEqual(['alerts.triggered']);
    expect(await pick('?status=failed')).toEqual(['alerts.resolved']);
    expect(await pick('?status=pending')).toEqual([]);
    expect(await pick('?event_type=alerts.triggered')).toEqual(['alerts.triggered']);
    expect(await pick('?event_type=alerts.resolved')).toEqual(['alerts.resolved']);
    expect(await pick('?status=failed&event_type=alerts.triggered')).toEqual([]);
    expect(await pick('?status=failed&event_type=alerts.resolved')).toEqual(['alerts.resolved']);
    expect((await s.request('GET', `/v1/webhook-endpoints/${endpoint.id}/deliveries?status=lost`)).status).toBe(400);
    expect((await s.request('GET', `/v1/webhook-endpoints/${endpoint.id}/deliveries?event_type=alerts.exploded`)).status).toBe(400);
  });
});

describe('end to end', () => {
  it('telemetry crosses a threshold: the receiver gets a verified alerts.triggered, then alerts.resolved when it recovers', async () => {
    const clock = testClock(START);
    // The real worker, woken by the committed event: no drain() here.
    const s = await server({ clock, env: { ALERTS_DELIVERY_WORKER: 'on' } });
    const r = await receiver();
    const endpoint = await createEndpoint(s, { url: r.url });
    const rule = await triggerAlert(s);

    const [triggered] = await r.waitFor(1);
    const t = expectVerifiedWebhook(triggered!, endpoint.secret);
    expect(t.body).toMatchObject({
      event_type: 'alerts.triggered',
      alert: { id: rule.id, metric: 'api_errors', current_value: 1, threshold_value: 1, previous_state: 'no_data', triggered_at: iso(START) },
    });

    await resolveAlerts(s, clock);
    const [, resolved] = await r.waitFor(2);
    const v = expectVerifiedWebhook(resolved!, endpoint.secret);
    expect(v.body).toMatchObject({
      event_type: 'alerts.resolved',
      alert: { id: rule.id, current_value: 0, previous_state: 'alert', triggered_at: iso(START), resolved_at: iso(START + 5 * MINUTE) },
    });
    expect(v.eventId).not.toBe(t.eventId);
    expect(v.timestamp).toBe(Math.floor((START + 5 * MINUTE) / 1000));
    const deliveries = await eventually(
      () => listDeliveries(s, endpoint.id),
      (list) => list.length === 2 && list.every((d) => d.status === 'delivered'),
    );
    expect(deliveries.map((d) => d.event_id)).toEqual([v.eventId, t.eventId]);
  });
});
