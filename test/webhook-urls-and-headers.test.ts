import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startHttpsReceiver, type HttpsReceiver } from './helpers/https-receiver.js';
import { endpointBody, snapshotDatabase, startSeededServer, startTestServer, testClock, type TestServer } from './helpers/server.js';
import { createEndpoint, expectVerifiedWebhook, headerCount, onlyDelivery, triggerAlert } from './helpers/webhook-fixtures.js';

/**
 * Endpoint URLs and custom headers that could never work are refused when written (400
 * naming the problem, nothing changes), instead of failing every attempt later.
 */

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

// Rejected writes change nothing (checked each time), so the validation tests share a server.
let shared: { server: TestServer; endpointId: string };
beforeAll(async () => {
  shared = await startSeededServer(testClock());
});
afterAll(async () => {
  await shared.server.close();
});
const seeded = async () => shared;

async function expectRejected(server: TestServer, method: string, path: string, body: unknown, mentions: RegExp): Promise<void> {
  const before = await snapshotDatabase(server.service);
  const res = await server.request(method, path, { body });
  expect(res.status, res.text).toBe(400);
  expect(res.body.message, res.text).toMatch(mentions);
  expect(await snapshotDatabase(server.service)).toEqual(before);
}

describe('webhook URLs', () => {
  const never: [string, string, RegExp][] = [
    ['port 0 (which would mean 443)', 'https://hooks.example.com:0/polyai', /url must have a port between 1 and 65535/],
    ['port 65536', 'https://hooks.example.com:65536/polyai', /url must have a port between 1 and 65535/],
    ['port 99999 on an IPv6 literal', 'https://[2001:db8::1]:99999/polyai', /url must have a port between 1 and 65535/],
    ['a user name (never sent)', 'https://user@hooks.example.com/polyai', /url must not contain user information/],
    ['a user name and password (never sent)', 'https://user:secret@hooks.example.com:8443/polyai', /url must not contain user information/],
    ['an empty user information part', 'https://@hooks.example.com/polyai', /url must not contain user information/],
    ['no host at all', 'https://', /url must name a host/],
    ['no host before the path (a URL parser would take the path for the host)', 'https:///polyai', /url must name a host/],
    ['no host before the path, with more slashes', 'https:////hooks.example.com/polyai', /url must name a host/],
    ['a port and no host', 'https://:443/', /url must name a host/],
    ['no host before a query', 'https://?to=hooks.example.com', /url must name a host/],
  ];

  it.each(never)('answers 400 on create for %s', async (_what, url, mentions) => {
    const { server } = await seeded();
    await expectRejected(server, 'POST', '/v1/webhook-endpoints', endpointBody({ url }), mentions);
  });

  it.each(never)('answers 400 on PATCH for %s', async (_what, url, mentions) => {
    const { server, endpointId } = await seeded();
    await expectRejected(server, 'PATCH', `/v1/webhook-endpoints/${endpointId}`, { url }, mentions);
  });

  it('accepts ports 1 and 65535, an explicit 443, and an IPv6 literal with a port', async () => {
    const { server } = await startSeededServer(testClock());
    cleanups.push(() => server.close());
    for (const url of [
      'https://hooks.example.com:1/a',
      'https://hooks.example.com:65535/a',
      'https://hooks.example.com:443/a',
      'https://[2001:db8::1]:8443/a',
      'https://hooks.example.com/a?token=x@y',
    ]) {
      const res = await server.request('POST', '/v1/webhook-endpoints', { body: endpointBody({ url, name: url }) });
      expect(res.status, `${url}: ${res.text}`).toBe(201);
      expect(res.body.url).toBe(url);
    }
  });
});

describe('custom headers', () => {
  const connectionLevel = ['Transfer-Encoding', 'upgrade', 'CONNECTION', 'Keep-Alive', 'Expect', 'TE', 'Host', 'Content-Length', 'Trailer', 'Proxy-Connection'];

  it.each(connectionLevel)('refuses %s with 400 naming it, on create and on PATCH', async (name) => {
    const { server, endpointId } = await seeded();
    const headers = { 'X-Fine': 'yes', [name]: 'value' };
    const mentions = new RegExp(`headers\\.${name} is a connection-level header`);
    await expectRejected(server, 'POST', '/v1/webhook-endpoints', endpointBody({ headers }), mentions);
    await expectRejected(server, 'PATCH', `/v1/webhook-endpoints/${endpointId}`, { headers }, mentions);
  });

  it('refuses two headers whose names differ only in case (both would be sent)', async () => {
    const { server, endpointId } = await seeded();
    const headers = { 'X-Team': 'voice', 'x-team': 'chat' };
    await expectRejected(server, 'POST', '/v1/webhook-endpoints', endpointBody({ headers }), /headers\.x-team repeats X-Team/);
    await expectRejected(server, 'PATCH', `/v1/webhook-endpoints/${endpointId}`, { headers }, /headers\.x-team repeats X-Team/);
  });
});

describe('custom headers on the wire', () => {
  async function deliveringServer(): Promise<{ server: TestServer; receiver: HttpsReceiver }> {
    const receiver = await startHttpsReceiver({ host: '127.0.0.1' });
    const server = await startTestServer({ env: { ALERTS_WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32' } });
    cleanups.push(() => receiver.close(), () => server.close());
    return { server, receiver };
  }

  it('sends a custom User-Agent instead of ours, exactly once', async () => {
    const { server, receiver } = await deliveringServer();
    const endpoint = await createEndpoint(server, { url: receiver.url, headers: { 'User-Agent': 'acme-hooks/2.0' } });
    await triggerAlert(server);
    await server.service.deliveryWorker.drain();
    const [request] = await receiver.waitFor(1);
    expect(headerCount(request!, 'user-agent')).toBe(1);
    expect(request!.headers['user-agent']).toBe('acme-hooks/2.0');
    expectVerifiedWebhook(request!, endpoint.secret);
  });

  it('still delivers for an endpoint stored with a connection-level header before they were refused, without sending it', async () => {
    const { server, receiver } = await deliveringServer();
    const endpoint = await createEndpoint(server, { url: receiver.url, headers: { 'X-Ok': '1' } });
    await server.service.store.db
      .updateTable('webhook_endpoints')
      .set({ headers: JSON.stringify({ 'X-Ok': '1', 'Transfer-Encoding': 'chunked', Connection: 'close', Upgrade: 'h2c', Expect: '100-continue' }) })
      .where('id', '=', endpoint.id)
      .execute();
    await triggerAlert(server);
    await server.service.deliveryWorker.drain();
    expect((await onlyDelivery(server, endpoint.id)).status).toBe('delivered');
    const [request] = await receiver.waitFor(1);
    expect(request!.headers['x-ok']).toBe('1');
    expect(request!.headers['transfer-encoding']).toBeUndefined();
    expect(request!.headers.upgrade).toBeUndefined();
    expect(request!.headers.expect).toBeUndefined();
    expectVerifiedWebhook(request!, endpoint.secret);
  });
});
