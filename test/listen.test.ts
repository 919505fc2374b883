import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TEST_TLS_DIR_ENV } from './global-setup.js';
import { CLI_PATH, freePort } from './helpers/cli-process.js';
import { ruleBody, startTestServer, type TestServer } from './helpers/server.js';

/**
 * `alerts listen`, the development receiver, run as a real child process on loopback:
 * answers 200 to a verified webhook and 400 to anything else, one printed line per webhook.
 */

const SECRET = 'whsec_listen-test-secret-0123456789abcdefghijklmnop';
const ISO = /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z/.source;

interface Listener {
  child: ChildProcess;
  url: string;
  stdout(): string;
  stderr(): string;
  waitForStdout(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  stop(): Promise<number | null>;
}

const children = new Set<ChildProcess>();
let server: TestServer | undefined;

afterEach(async () => {
  await Promise.all(
    [...children].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('close', () => resolve());
          child.kill('SIGKILL');
        }),
    ),
  );
  children.clear();
  await server?.close();
  server = undefined;
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Starts `alerts listen <args>` with only PATH, HOME and `env`, and waits for its address. */
async function listen(args: string[], env: Record<string, string> = {}): Promise<Listener> {
  const base: Record<string, string> = {};
  if (process.env.PATH) base.PATH = process.env.PATH;
  if (process.env.HOME) base.HOME = process.env.HOME;
  const child = spawn(process.execPath, [CLI_PATH, 'listen', ...args], { env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  let hasExited = false;
  void exited.then(() => (hasExited = true));

  const waitForStdout = async (pattern: RegExp, timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = stdout.match(pattern);
      if (match) return match;
      if (hasExited) throw new Error(`listen exited before printing ${pattern}; stdout: ${stdout}; stderr: ${stderr}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}; stdout: ${stdout}; stderr: ${stderr}`);
      await sleep(20);
    }
  };
  const [, url] = await waitForStdout(/listening on (https?:\/\/\S+\/)/);
  return {
    child,
    url: url!,
    stdout: () => stdout,
    stderr: () => stderr,
    waitForStdout,
    stop: () => {
      if (!hasExited) child.kill('SIGTERM');
      return exited;
    },
  };
}

/** The documented algorithm, independently of the code under test. */
const sign = (secret: string, timestamp: number, body: string) => createHmac('sha256', Buffer.from(secret, 'utf8')).update(`${timestamp}.${body}`, 'utf8').digest('hex');

function webhook(overrides: { eventId?: string; name?: string; currentValue?: number; test?: boolean } = {}) {
  const eventId = overrides.eventId ?? 'evt_ListenTest000000000001';
  const at = new Date().toISOString();
  return {
    eventId,
    body: JSON.stringify({
      id: eventId,
      event_type: 'alerts.triggered',
      created_at: at,
      ...(overrides.test ? { test: true } : {}),
      alert: {
        id: 'ar_0Kx4mNpQ8rWvYb2dFgHjLs',
        name: overrides.name ?? 'High turn latency (p95)',
        project_id: 'proj_abc123',
        metric: 'turn_latency_p95',
        operator: '>=',
        threshold_value: 1500,
        window_duration: '5m',
        current_value: overrides.currentValue ?? 1720,
        previous_state: 'ok',
        triggered_at: at,
      },
    }),
  };
}

async function post(url: string, body: string, headers: Record<string, string>) {
  const res = await fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

function signedHeaders(eventId: string, body: string, secret = SECRET, timestamp = Math.floor(Date.now() / 1000)) {
  return { 'X-PolyAI-Timestamp': String(timestamp), 'X-PolyAI-Signature': sign(secret, timestamp, body), 'X-PolyAI-Event-ID': eventId };
}

describe('alerts listen', () => {
  it('answers 200 to a correctly signed webhook and 400 to a badly signed one, printing one line each', async () => {
    const port = await freePort();
    const listener = await listen(['--port', String(port), '--secret', SECRET]);
    expect(listener.url).toBe(`http://127.0.0.1:${port}/`);

    const good = webhook();
    const ok = await post(`${listener.url}webhooks/polyai`, good.body, signedHeaders(good.eventId, good.body));
    expect(ok).toEqual({ status: 200, body: { ok: true, event_id: good.eventId } });
    await listener.waitForStdout(/verified evt_ListenTest000000000001/);

    const bad = webhook({ eventId: 'evt_ListenTest000000000002' });
    const rejected = await post(listener.url, bad.body, signedHeaders(bad.eventId, bad.body, SECRET + 'wrong'));
    expect(rejected).toEqual({ status: 400, body: { ok: false, reason: 'invalid_signature' } });
    await listener.waitForStdout(/REJECTED/);

    const lines = listener.stdout().trimEnd().split('\n').slice(1);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(
      new RegExp(`^${ISO} verified evt_ListenTest000000000001 alerts\\.triggered rule="High turn latency \\(p95\\)" current_value=1720 \\(>= 1500\\)$`),
    );
    expect(lines[1]).toMatch(new RegExp(`^${ISO} REJECTED invalid_signature event_id=evt_ListenTest000000000002$`));
    // The secret is never printed.
    expect(listener.stdout() + listener.stderr()).not.toContain(SECRET);
  });

  it('rejects tampered, stale and unsigned requests with their reason, and other methods with 405', async () => {
    const listener = await listen(['--port', '0'], { ALERTS_WEBHOOK_SECRET: SECRET });
    const good = webhook({ eventId: 'evt_tampered' });
    const headers = signedHeaders(good.eventId, good.body);

    expect(await post(listener.url, good.body.replace('1720', '9999'), headers)).toEqual({ status: 400, body: { ok: false, reason: 'invalid_signature' } });
    const staleAt = Math.floor(Date.now() / 1000) - 301;
    expect(await post(listener.url, good.body, signedHeaders(good.eventId, good.body, SECRET, staleAt))).toEqual({
      status: 400,
      body: { ok: false, reason: 'timestamp_too_old' },
    });
    expect(await post(listener.url, good.body, {})).toEqual({ status: 400, body: { ok: false, reason: 'missing_headers' } });
    expect(await post(listener.url, good.body, { ...headers, 'X-PolyAI-Timestamp': 'soon' })).toEqual({
      status: 400,
      body: { ok: false, reason: 'invalid_timestamp' },
    });
    const get = await fetch(listener.url);
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
    await get.arrayBuffer();

    await listener.waitForStdout(/(?:REJECTED[^\n]*\n[\s\S]*?){4}/);
    const lines = listener.stdout().trimEnd().split('\n').slice(1);
    expect(lines.map((line) => line.split(' ').slice(1, 3).join(' '))).toEqual([
      'REJECTED invalid_signature',
      'REJECTED timestamp_too_old',
      'REJECTED missing_headers',
      'REJECTED invalid_timestamp',
    ]);
    expect(lines[2]).toMatch(/event_id=-$/);
  });

  it('prints whatever the sender wrote without control characters, and --print-body shows the event', async () => {
    const listener = await listen(['--port', '0', '--secret', SECRET, '--print-body']);
    const hostile = webhook({ eventId: 'evt_escape', name: 'red\u001b[31m alert\nnext line\u009b', test: true });
    expect((await post(listener.url, hostile.body, signedHeaders(hostile.eventId, hostile.body))).status).toBe(200);
    const header = await post(listener.url, hostile.body, { ...signedHeaders('evt_a\tb', hostile.body) });
    expect(header.status).toBe(400); // the body's id differs from the header's
    await listener.waitForStdout(/REJECTED invalid_body/);
    const out = listener.stdout();
    expect(out).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/); // eslint-disable-line no-control-regex
    expect(out).toContain('rule="red\\u001b[31m alert\\nnext line\\u009b" current_value=1720 (>= 1500) [test]');
    expect(out).toContain('"event_type": "alerts.triggered",');
  });

  it('refuses to start without a secret, or with --cert but no --key', async () => {
    const missing = await listen(['--port', '0']).catch((error: Error) => error);
    expect(String(missing)).toMatch(/required option '--secret <secret>' not specified/);
    const half = await listen(['--port', '0', '--secret', SECRET, '--cert', '/nonexistent.pem']).catch((error: Error) => error);
    expect(String(half)).toMatch(/--cert and --key go together/);
  });

  it('over HTTPS, receives and verifies the real service\'s alerts.triggered end to end', async () => {
    const tlsDir = process.env[TEST_TLS_DIR_ENV]!;
    server = await startTestServer({ env: { ALERTS_DELIVERY_WORKER: 'on', ALERTS_WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32' } });
    // The service's secret is only known once the endpoint exists, and the endpoint needs the
    // receiver's URL: take a free port first (retrying if it was taken in between).
    let listener: Listener | undefined;
    let endpoint: { id: string; signing_secret: string } | undefined;
    for (let attempt = 0; attempt < 3 && !listener; attempt++) {
      const port = await freePort();
      const created = await server.request('POST', '/v1/webhook-endpoints', {
        body: { name: 'alerts listen', url: `https://127.0.0.1:${port}/hook`, event_types: ['alerts.triggered', 'alerts.resolved'] },
      });
      expect(created.status, created.text).toBe(201);
      endpoint = created.body;
      listener = await listen(['--port', String(port), '--cert', join(tlsDir, 'server.crt'), '--key', join(tlsDir, 'server.key')], {
        ALERTS_WEBHOOK_SECRET: endpoint!.signing_secret,
      }).catch(async (error: Error) => {
        if (!/EADDRINUSE/.test(String(error))) throw error;
        await server!.request('DELETE', `/v1/webhook-endpoints/${created.body.id}`);
        return undefined;
      });
    }
    expect(listener!.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/$/);

    const rule = await server.request('POST', '/v1/alert-rules', { body: ruleBody({ name: 'Slow turns' }) });
    expect(rule.status, rule.text).toBe(201);
    const res = await server.request('POST', '/v1/telemetry/events', {
      body: { events: Array.from({ length: 20 }, () => ({ type: 'turn', project_id: 'proj_abc123', latency_ms: 1875 })) },
    });
    expect(res.status, res.text).toBe(202);

    const [, eventId] = await listener!.waitForStdout(
      new RegExp(`${ISO} verified (evt_\\w+) alerts\\.triggered rule="Slow turns" current_value=\\d+ \\(>= 1500\\)\n`),
    );
    // The worker records the 200 just after the receiver printed its line.
    const deadline = Date.now() + 5000;
    let delivery: { event_id: string; status: string } | undefined;
    while (delivery?.status !== 'delivered' && Date.now() < deadline) {
      const deliveries = await server.request('GET', `/v1/webhook-endpoints/${endpoint!.id}/deliveries`);
      expect(deliveries.status).toBe(200);
      delivery = deliveries.body.data[0];
      await sleep(20);
    }
    expect(delivery).toMatchObject({ event_id: eventId, status: 'delivered' });

    // The test webhook reaches it too, marked as a test.
    const test = await server.request('POST', `/v1/webhook-endpoints/${endpoint!.id}/test`);
    expect(test.status, test.text).toBe(200);
    expect(test.body).toMatchObject({ delivered: true, status_code: 200 });
    await listener!.waitForStdout(new RegExp(`verified ${test.body.event_id} alerts\\.triggered .* \\[test\\]\n`));
    expect(listener!.stdout()).not.toContain('REJECTED');
    expect(await listener!.stop()).toBe(0);
  });
});
