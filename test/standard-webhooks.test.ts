import { createHmac } from 'node:crypto';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { newSigningSecret } from '../src/domain/webhook-endpoints.js';
import type { ReceivedRequest } from './helpers/https-receiver.js';
import { useCleanups } from './helpers/cleanups.js';
import { snapshotDatabase, startTestServer, testClock, type TestServer } from './helpers/server.js';
import {
  createEndpoint,
  expectVerifiedWebhook,
  headerCount,
  listDeliveries,
  resolveAlerts,
  signatureMatches,
  triggerAlert,
} from './helpers/webhook-fixtures.js';

/**
 * Standard Webhooks (standardwebhooks.com) alongside our X-PolyAI headers: every attempt
 * carries webhook-id, webhook-timestamp and webhook-signature, checked here with the
 * `standardwebhooks` npm package itself, given the endpoint's secret exactly as the API
 * returned it. And secret rotation with an overlap, during which both secrets sign.
 */

const START = Date.parse('2026-03-15T10:30:00.000Z');
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const ALLOW_RECEIVERS = { ALERTS_WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32' };

const { defer, receiver } = useCleanups();

async function server(clock = testClock(START)) {
  const s = await startTestServer({ clock, env: ALLOW_RECEIVERS });
  defer(() => s.close());
  return s;
}


const drain = (s: TestServer) => s.service.deliveryWorker.drain();
const iso = (ms: number) => new Date(ms).toISOString();

/**
 * What `new Webhook(secret).verify(body, headers)` says of a request, for a receiver whose
 * clock reads `atMs` (the library reads Date.now(); the service runs on an injected clock).
 * Returns the parsed body, or the library's error.
 */
function libraryVerify(request: ReceivedRequest, secret: string, atMs: number): unknown {
  const realNow = Date.now;
  Date.now = () => atMs;
  try {
    return new Webhook(secret).verify(request.body.toString('utf8'), request.headers as Record<string, string>);
  } catch (error) {
    return error;
  } finally {
    Date.now = realNow;
  }
}

/** The signature the specification defines, computed here from node:crypto alone. */
function specSignature(secret: string, id: string, timestamp: string, body: Buffer): string {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  return createHmac('sha256', key).update(Buffer.concat([Buffer.from(`${id}.${timestamp}.`, 'utf8'), body])).digest('base64');
}

/** The Standard Webhooks headers of a request, each sent exactly once, in the specified formats. */
function standardHeaders(request: ReceivedRequest) {
  for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) expect(headerCount(request, name), `${name} sent once`).toBe(1);
  const id = request.headers['webhook-id'] as string;
  const timestamp = request.headers['webhook-timestamp'] as string;
  const signatures = (request.headers['webhook-signature'] as string).split(' ');
  for (const signature of signatures) expect(signature).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
  return { id, timestamp, signatures: signatures.map((s) => s.slice(3)) };
}

describe('Standard Webhooks headers', () => {
  it('every attempt, retries included, carries webhook-id (the event id), webhook-timestamp (the attempt) and a webhook-signature the library verifies with the secret as given', async () => {
    const clock = testClock(START);
    const s = await server(clock);
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
    const seen = requests.map((request, i) => {
      const at = START + [0, MINUTE, 6 * MINUTE][i]!;
      // Ours, unchanged and checked on its own.
      const ours = expectVerifiedWebhook(request, endpoint.secret);
      const standard = standardHeaders(request);
      expect(standard.id).toBe(ours.eventId);
      expect(standard.timestamp).toBe(String(ours.timestamp));
      expect(Number(standard.timestamp)).toBe(Math.floor(at / 1000));
      expect(standard.signatures).toEqual([specSignature(endpoint.secret, standard.id, standard.timestamp, request.body)]);
      expect(libraryVerify(request, endpoint.secret, at)).toEqual(ours.body);
      // Another secret does not verify it, nor does the library five minutes later.
      expect(libraryVerify(request, newSigningSecret(), at)).toBeInstanceOf(WebhookVerificationError);
      expect(libraryVerify(request, endpoint.secret, at + 6 * MINUTE)).toBeInstanceOf(WebhookVerificationError);
      return standard;
    });
    expect(new Set(seen.map((h) => h.id)).size).toBe(1);
    expect(new Set(seen.map((h) => h.signatures[0])).size).toBe(3);
    expect((await listDeliveries(s, endpoint.id))[0]).toMatchObject({ event_id: seen[0]!.id, status: 'delivered', attempt_count: 3 });
  });

  it('the test event carries them too', async () => {
    const clock = testClock(START);
    const s = await server(clock);
    const r = await receiver();
    const endpoint = await createEndpoint(s, { url: r.url });
    const res = await s.request('POST', `/v1/webhook-endpoints/${endpoint.id}/test`);
    expect(res.status, res.text).toBe(200);
    expect(res.body.delivered).toBe(true);

    const [request] = await r.waitFor(1);
    const ours = expectVerifiedWebhook(request!, endpoint.secret);
    const standard = standardHeaders(request!);
    expect(standard.id).toBe(res.body.event_id);
    expect(standard.timestamp).toBe(String(Math.floor(START / 1000)));
    expect(libraryVerify(request!, endpoint.secret, START)).toEqual({ ...ours.body, test: true });
  });

  it('issues secrets of letters and digits after whsec_: the same 32 bytes in base64 and base64url, so the library takes them unchanged', async () => {
    const s = await server();
    const created = await createEndpoint(s, {});
    const rotated = await s.request('POST', `/v1/webhook-endpoints/${created.id}/rotate-secret`);
    for (const secret of [created.secret, rotated.body.signing_secret as string, ...Array.from({ length: 200 }, newSigningSecret)]) {
      expect(secret).toMatch(/^whsec_[A-Za-z0-9]{43}$/);
      const text = secret.slice('whsec_'.length);
      expect(Buffer.from(text, 'base64')).toEqual(Buffer.from(text, 'base64url'));
      expect(Buffer.from(text, 'base64')).toHaveLength(32);
      expect(() => new Webhook(secret)).not.toThrow();
    }
  });

  it('signs for a secret issued before (base64url, with - or _) with the same bytes: the library takes it with + and / in their place', async () => {
    const clock = testClock(START);
    const s = await server(clock);
    const r = await receiver();
    const endpoint = await createEndpoint(s, { url: r.url });
    // A secret as issued before: base64url of 32 bytes, here with both of its own characters.
    const older = 'whsec_' + Buffer.concat([Buffer.from([0xfb, 0xff]), Buffer.alloc(30, 7)]).toString('base64url');
    expect(older).toMatch(/-/);
    expect(older).toMatch(/_/);
    await s.service.store.db.updateTable('webhook_endpoints').set({ signing_secret: `plain:${older}` }).where('id', '=', endpoint.id).execute();
    await triggerAlert(s);
    await drain(s);

    const [request] = await r.waitFor(1);
    expectVerifiedWebhook(request!, older);
    expect(() => new Webhook(older)).toThrow();
    // After the prefix only: whsec_ keeps its own underscore.
    const translated = 'whsec_' + older.slice('whsec_'.length).replace(/-/g, '+').replace(/_/g, '/');
    expect(libraryVerify(request!, translated, START)).toMatchObject({ event_type: 'alerts.triggered' });
  });

  it('never sends custom headers named like them: ours are sent once, and verify', async () => {
    const s = await server();
    const r = await receiver();
    const endpoint = await createEndpoint(s, {
      url: r.url,
      headers: { 'webhook-signature': 'v1,Zm9yZ2Vk', 'Webhook-Id': 'msg_forged', 'WEBHOOK-TIMESTAMP': '1', 'X-Team': 'voice' },
    });
    // Accepted and kept, as X-PolyAI-* ones are; never sent.
    expect(endpoint.body.headers).toEqual({ 'webhook-signature': 'v1,Zm9yZ2Vk', 'Webhook-Id': 'msg_forged', 'WEBHOOK-TIMESTAMP': '1', 'X-Team': 'voice' });
    await triggerAlert(s);
    await drain(s);

    const [request] = await r.waitFor(1);
    const standard = standardHeaders(request!);
    expect(standard.id).not.toBe('msg_forged');
    expect(standard.timestamp).toBe(String(Math.floor(START / 1000)));
    expect(standard.signatures).toHaveLength(1);
    expect(request!.headers['x-team']).toBe('voice');
    expect(libraryVerify(request!, endpoint.secret, START)).toMatchObject({ event_type: 'alerts.triggered' });
  });
});

describe('rotating the signing secret', () => {
  it('without overlap: the old secret stops at once, for both signatures', async () => {
    const clock = testClock(START);
    const s = await server(clock);
    const r = await receiver();
    const endpoint = await createEndpoint(s, { url: r.url });
    expect(endpoint.body.previous_secret_expires_at).toBeNull();
    const rotated = await s.request('POST', `/v1/webhook-endpoints/${endpoint.id}/rotate-secret`);
    expect(rotated.status).toBe(200);
    expect(rotated.body).toEqual({ signing_secret: expect.stringMatching(/^whsec_/), previous_secret_expires_at: null });
    expect((await s.request('GET', `/v1/webhook-endpoints/${endpoint.id}`)).body.previous_secret_expires_at).toBeNull();
    await triggerAlert(s);
    await drain(s);

    const [request] = await r.waitFor(1);
    const fresh = rotated.body.signing_secret as string;
    expectVerifiedWebhook(request!, fresh);
    expect(signatureMatches(request!, endpoint.secret)).toBe(false);
    expect(standardHeaders(request!).signatures).toHaveLength(1);
    expect(libraryVerify(request!, fresh, START)).toMatchObject({ event_type: 'alerts.triggered' });
    expect(libraryVerify(request!, endpoint.secret, START)).toBeInstanceOf(WebhookVerificationError);
  });

  it('with ?overlap=1h: both secrets verify the Standard Webhooks signature until then, X-PolyAI-Signature only the new one; after it, only the new one', async () => {
    const clock = testClock(START);
    const s = await server(clock);
    const r = await receiver();
    const endpoint = await createEndpoint(s, { url: r.url });
    const rotated = await s.request('POST', `/v1/webhook-endpoints/${endpoint.id}/rotate-secret?overlap=1h`);
    expect(rotated.status, rotated.text).toBe(200);
    expect(rotated.body).toEqual({ signing_secret: expect.stringMatching(/^whsec_[A-Za-z0-9]{43}$/), previous_secret_expires_at: iso(START + HOUR) });
    const fresh = rotated.body.signing_secret as string;
    expect((await s.request('GET', `/v1/webhook-endpoints/${endpoint.id}`)).body.previous_secret_expires_at).toBe(iso(START + HOUR));
    expect((await s.request('GET', '/v1/webhook-endpoints')).body.data[0].previous_secret_expires_at).toBe(iso(START + HOUR));

    await triggerAlert(s);
    await drain(s);
    const [during] = await r.waitFor(1);
    expectVerifiedWebhook(during!, fresh);
    expect(signatureMatches(during!, endpoint.secret)).toBe(false);
    const signed = standardHeaders(during!);
    // The new secret's signature first, then the previous one's.
    expect(signed.signatures).toEqual([
      specSignature(fresh, signed.id, signed.timestamp, during!.body),
      specSignature(endpoint.secret, signed.id, signed.timestamp, during!.body),
    ]);
    expect(libraryVerify(during!, fresh, START)).toMatchObject({ event_type: 'alerts.triggered' });
    expect(libraryVerify(during!, endpoint.secret, START)).toMatchObject({ event_type: 'alerts.triggered' });

    // The test event during the overlap: both too.
    const test = await s.request('POST', `/v1/webhook-endpoints/${endpoint.id}/test`);
    expect(test.body.delivered).toBe(true);
    const [, sample] = await r.waitFor(2);
    expect(standardHeaders(sample!).signatures).toHaveLength(2);
    expect(libraryVerify(sample!, endpoint.secret, START)).toMatchObject({ test: true });

    // An hour later the previous secret signs nothing.
    clock.advance(HOUR);
    expect((await s.request('GET', `/v1/webhook-endpoints/${endpoint.id}`)).body.previous_secret_expires_at).toBeNull();
    await resolveAlerts(s, clock);
    await drain(s);
    const [, , after] = await r.waitFor(3);
    expect(JSON.parse(after!.body.toString()).event_type).toBe('alerts.resolved');
    expectVerifiedWebhook(after!, fresh);
    expect(standardHeaders(after!).signatures).toHaveLength(1);
    const at = START + HOUR + 5 * MINUTE;
    expect(libraryVerify(after!, fresh, at)).toMatchObject({ event_type: 'alerts.resolved' });
    expect(libraryVerify(after!, endpoint.secret, at)).toBeInstanceOf(WebhookVerificationError);
  });

  it('a retry after the overlap ended is signed by the new secret only', async () => {
    const clock = testClock(START);
    const s = await server(clock);
    const r = await receiver();
    r.enqueue({ status: 503 });
    const endpoint = await createEndpoint(s, { url: r.url });
    const rotated = await s.request('POST', `/v1/webhook-endpoints/${endpoint.id}/rotate-secret?overlap=30s`);
    const fresh = rotated.body.signing_secret as string;
    await triggerAlert(s);
    await drain(s);
    clock.advance(MINUTE);
    await drain(s);

    const [first, retry] = await r.waitFor(2);
    expect(standardHeaders(first!).signatures).toHaveLength(2);
    expect(libraryVerify(first!, endpoint.secret, START)).toMatchObject({ event_type: 'alerts.triggered' });
    expect(standardHeaders(retry!).signatures).toHaveLength(1);
    expect(libraryVerify(retry!, fresh, START + MINUTE)).toMatchObject({ event_type: 'alerts.triggered' });
    expect(libraryVerify(retry!, endpoint.secret, START + MINUTE)).toBeInstanceOf(WebhookVerificationError);
  });

  it('rotating again during an overlap replaces the previous secret with the one being replaced; without overlap, drops it', async () => {
    const clock = testClock(START);
    const s = await server(clock);
    const r = await receiver();
    const endpoint = await createEndpoint(s, { url: r.url });
    const first = endpoint.secret;
    const second = (await s.request('POST', `/v1/webhook-endpoints/${endpoint.id}/rotate-secret?overlap=24h`)).body.signing_secret as string;
    clock.advance(MINUTE);
    const third = await s.request('POST', `/v1/webhook-endpoints/${endpoint.id}/rotate-secret?overlap=2h`);
    expect(third.body.previous_secret_expires_at).toBe(iso(START + MINUTE + 2 * HOUR));

    let sent = 0;
    const sample = async () => {
      expect((await s.request('POST', `/v1/webhook-endpoints/${endpoint.id}/test`)).body.delivered).toBe(true);
      sent += 1;
      return (await r.waitFor(sent))[sent - 1]!;
    };
    const during = await sample();
    expect(standardHeaders(during).signatures).toHaveLength(2);
    expect(libraryVerify(during, third.body.signing_secret, clock.now())).toMatchObject({ test: true });
    expect(libraryVerify(during, second, clock.now())).toMatchObject({ test: true });
    expect(libraryVerify(during, first, clock.now())).toBeInstanceOf(WebhookVerificationError);

    const fourth = await s.request('POST', `/v1/webhook-endpoints/${endpoint.id}/rotate-secret`);
    expect(fourth.body.previous_secret_expires_at).toBeNull();
    const after = await sample();
    expect(standardHeaders(after).signatures).toHaveLength(1);
    expect(libraryVerify(after, fourth.body.signing_secret, clock.now())).toMatchObject({ test: true });
    expect(libraryVerify(after, third.body.signing_secret, clock.now())).toBeInstanceOf(WebhookVerificationError);
    expect((await s.request('GET', `/v1/webhook-endpoints/${endpoint.id}`)).body.previous_secret_expires_at).toBeNull();
  });

  it('accepts overlaps from 1s to 7d in s, m, h or d', async () => {
    const clock = testClock(START);
    const s = await server(clock);
    const endpoint = await createEndpoint(s, {});
    for (const [overlap, ms] of [['1s', 1000], ['90m', 90 * MINUTE], ['7d', 7 * 24 * HOUR], ['168h', 168 * HOUR]] as const) {
      const res = await s.request('POST', `/v1/webhook-endpoints/${endpoint.id}/rotate-secret?overlap=${overlap}`);
      expect(res.status, res.text).toBe(200);
      expect(res.body.previous_secret_expires_at).toBe(iso(START + ms));
    }
  });

  it.each([
    ['0', /overlap must be a duration such as 30s, 15m, 24h or 7d/],
    ['0s', /overlap must be more than 0/],
    ['8d', /overlap must be at most 7d/],
    ['169h', /overlap must be at most 7d/],
    ['garbage', /overlap must be a duration/],
    ['-1h', /overlap must be a duration/],
    ['1.5h', /overlap must be a duration/],
    ['', /overlap must be a duration/],
    ['1h ', /overlap must be a duration/],
    ['12345678901234567', /overlap/],
  ])('refuses ?overlap=%j with a 400 naming overlap, changing nothing', async (overlap, message) => {
    const clock = testClock(START);
    const s = await server(clock);
    const endpoint = await createEndpoint(s, {});
    clock.advance(MINUTE);
    const before = await snapshotDatabase(s.service);
    const res = await s.request('POST', `/v1/webhook-endpoints/${endpoint.id}/rotate-secret?overlap=${encodeURIComponent(overlap)}`);
    expect(res.status, res.text).toBe(400);
    expect(res.body.message).toMatch(message);
    expect(res.body.errors).toEqual([{ field: 'overlap', message: expect.any(String) }]);
    expect(await snapshotDatabase(s.service)).toEqual(before);
    expect(await s.service.store.webhookEndpoints.signingSecret(endpoint.id)).toBe(endpoint.secret);
  });
});
