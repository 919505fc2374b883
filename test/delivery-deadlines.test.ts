import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startHttpsReceiver, testTls, type HttpsReceiver } from './helpers/https-receiver.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { createEndpoint, eventually, listDeliveries, sleep, triggerAlert } from './helpers/webhook-fixtures.js';

/**
 * An attempt always ends, and frees its slot, by the endpoint's timeout_ms (plus a small
 * margin), whatever the receiver does: accept TCP and never speak, finish TLS and never
 * answer, or answer headers and stall the body. Real listeners on 127.0.0.1, real clock.
 */

const ALLOW_RECEIVERS = { ALERTS_WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32' };
/** Timer and scheduling latency allowed on top of an endpoint's timeout. */
const MARGIN_MS = 1000;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function server(env: Record<string, string> = {}): Promise<TestServer> {
  const s = await startTestServer({ env: { ...ALLOW_RECEIVERS, ...env } });
  cleanups.push(() => s.close());
  return s;
}

interface SilentListener {
  url: string;
  /** Sockets accepted and still open. */
  open: Set<Socket>;
  accepted: number;
}

/** Accepts TCP connections and never sends a byte: the TLS handshake never completes. */
async function silentListener(): Promise<SilentListener> {
  const open = new Set<Socket>();
  const state = { accepted: 0 };
  const tcp: Server = createTcpServer((socket) => {
    state.accepted += 1;
    open.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => open.delete(socket));
    // Reads (and ignores) the ClientHello: a paused socket would never see the sender close.
    socket.resume();
  });
  await new Promise<void>((resolve) => tcp.listen({ host: '127.0.0.1', port: 0 }, () => resolve()));
  cleanups.push(async () => {
    for (const socket of open) socket.destroy();
    await new Promise<void>((resolve) => tcp.close(() => resolve()));
  });
  const { port } = tcp.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}/hook`,
    open,
    get accepted() {
      return state.accepted;
    },
  };
}

/** Completes TLS and the request, answers the status line and headers, then stalls the body forever. */
async function stallingBodyListener(): Promise<{ url: string }> {
  const tls = testTls();
  const open = new Set<Socket>();
  const https = createHttpsServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000' });
      res.write('the first bytes, then nothing');
    });
  });
  https.on('connection', (socket: Socket) => {
    open.add(socket);
    socket.on('close', () => open.delete(socket));
  });
  await new Promise<void>((resolve) => https.listen({ host: '127.0.0.1', port: 0 }, () => resolve()));
  cleanups.push(async () => {
    for (const socket of open) socket.destroy();
    await new Promise<void>((resolve) => https.close(() => resolve()));
  });
  return { url: `https://127.0.0.1:${(https.address() as AddressInfo).port}/hook` };
}

async function hangingReceiver(): Promise<HttpsReceiver> {
  const r = await startHttpsReceiver();
  r.setDefault({ hang: true });
  cleanups.push(() => r.close());
  return r;
}

const LISTENERS: [string, () => Promise<{ url: string }>][] = [
  ['accepts TCP and never speaks', silentListener],
  ['completes TLS and never answers', async () => ({ url: (await hangingReceiver()).url })],
  ['answers headers and then stalls the body', stallingBodyListener],
];

describe.each(LISTENERS)('a receiver that %s', (_name, listen) => {
  it('gets a test event whose POST .../test answers "timeout" within timeout_ms', async () => {
    const s = await server();
    const listener = await listen();
    const endpoint = await createEndpoint(s, { url: listener.url, timeout_ms: 1000 });
    const started = Date.now();
    const res = await s.request('POST', `/v1/webhook-endpoints/${endpoint.id}/test`);
    const elapsed = Date.now() - started;
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ delivered: false, status_code: null, error_class: 'timeout' });
    expect(elapsed).toBeGreaterThanOrEqual(900);
    expect(elapsed).toBeLessThan(1000 + MARGIN_MS);
  });

  it('holds a delivery attempt no longer than timeout_ms: it is recorded as a timeout and retried later', async () => {
    const s = await server({ ALERTS_RETRY_SCHEDULE: '0,1h' });
    const listener = await listen();
    const endpoint = await createEndpoint(s, { url: listener.url, timeout_ms: 1000 });
    await triggerAlert(s);
    const started = Date.now();
    await s.service.deliveryWorker.drain();
    expect(Date.now() - started).toBeLessThan(1000 + MARGIN_MS);
    const [delivery] = await listDeliveries(s, endpoint.id);
    expect(delivery).toMatchObject({ status: 'pending', attempt_count: 1 });
    expect(delivery.last_error).toMatch(/^timeout/);
    expect(delivery.attempts[0]).toMatchObject({ status_code: null, error_class: 'timeout' });
  });
});

describe('an endpoint whose receiver hangs', () => {
  it('has its attempt in flight aborted when it is deleted, and the connection is closed', async () => {
    const s = await server({ ALERTS_DELIVERY_WORKER: 'on' });
    const listener = await silentListener();
    const endpoint = await createEndpoint(s, { url: listener.url, timeout_ms: 30_000 });
    await triggerAlert(s);
    await eventually(async () => listener.accepted, (n) => n >= 1);
    const drained = s.service.deliveryWorker.drain();
    const started = Date.now();
    expect((await s.request('DELETE', `/v1/webhook-endpoints/${endpoint.id}`)).status).toBe(204);
    await drained;
    expect(Date.now() - started).toBeLessThan(MARGIN_MS);
    await eventually(async () => listener.open.size, (n) => n === 0, 2000);
    const rows = await s.service.store.db.selectFrom('webhook_deliveries').select(['status', 'attempts']).execute();
    expect(rows).toEqual([{ status: 'cancelled', attempts: 0 }]);
  });

  it('has its attempt in flight aborted when it is disabled; the delivery waits, pending, with no attempt counted', async () => {
    const s = await server({ ALERTS_DELIVERY_WORKER: 'on' });
    const listener = await silentListener();
    const endpoint = await createEndpoint(s, { url: listener.url, timeout_ms: 30_000 });
    await triggerAlert(s);
    await eventually(async () => listener.accepted, (n) => n >= 1);
    const drained = s.service.deliveryWorker.drain();
    const started = Date.now();
    expect((await s.request('PATCH', `/v1/webhook-endpoints/${endpoint.id}`, { body: { enabled: false } })).status).toBe(200);
    await drained;
    expect(Date.now() - started).toBeLessThan(MARGIN_MS);
    const [delivery] = await listDeliveries(s, endpoint.id);
    expect(delivery).toMatchObject({ status: 'pending', attempt_count: 0, attempts: [] });
  });

  it('does not hold up shutdown past the grace period; the delivery is due again at the next start', async () => {
    const s = await startTestServer({ env: { ...ALLOW_RECEIVERS, ALERTS_DELIVERY_WORKER: 'on', ALERTS_SHUTDOWN_TIMEOUT_MS: '1500' } });
    const listener = await silentListener();
    await createEndpoint(s, { url: listener.url, timeout_ms: 30_000 });
    await triggerAlert(s);
    await eventually(async () => listener.accepted, (n) => n >= 1);
    const started = Date.now();
    await s.service.close();
    // The grace period is the shutdown timeout less a second for the rest of the shutdown.
    expect(Date.now() - started).toBeLessThan(1500 + MARGIN_MS);
    const again = await startTestServer({ dir: s.dir, env: { ...ALLOW_RECEIVERS } });
    cleanups.push(() => again.close());
    const rows = await again.service.store.db.selectFrom('webhook_deliveries').select(['status', 'attempts']).execute();
    expect(rows).toEqual([{ status: 'pending', attempts: 0 }]);
  });
});

describe('one account whose endpoints all hang', () => {
  it('cannot take the slots of another account: its webhook arrives at once', async () => {
    // 8 slots, 4 per endpoint: without a per-account bound, ten hanging endpoints take all 8.
    const s = await server({
      ALERTS_DELIVERY_WORKER: 'on',
      ALERTS_DELIVERY_CONCURRENCY: '8',
      ALERTS_DELIVERY_ENDPOINT_CONCURRENCY: '4',
      ALERTS_DELIVERY_ACCOUNT_CONCURRENCY: '4',
    });
    const hanging = await hangingReceiver();
    for (let i = 0; i < 10; i++) await createEndpoint(s, { name: `hanging ${i}`, url: hanging.url, timeout_ms: 30_000 });
    await triggerAlert(s);
    await eventually(async () => hanging.requests.length, (n) => n >= 4);
    await sleep(200);
    expect(hanging.requests.length).toBe(4);

    const healthy = await startHttpsReceiver();
    cleanups.push(() => healthy.close());
    const otherKey = await s.newKey('globex');
    await createEndpoint(s, { url: healthy.url }, otherKey);
    const started = Date.now();
    await triggerAlert(s, otherKey);
    await healthy.waitFor(1, 5000);
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
