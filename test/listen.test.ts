import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ensureThrowawayCert } from '../src/cli/throwaway-cert.js';
import { TEST_TLS_DIR_ENV } from './global-setup.js';
import { CLI_PATH, freePort, runCli } from './helpers/cli-process.js';
import { ruleBody, startTestServer, type TestServer } from './helpers/server.js';
import { loopbackLookup } from './helpers/webhook-fixtures.js';

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
const tempDirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'alerts-listen-test-'));
  tempDirs.push(dir);
  return dir;
};

afterEach(async () => {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
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
    expect(String(missing)).toMatch(/no signing secret: give the endpoint's secret with ALERTS_WEBHOOK_SECRET=whsec_\.\.\. \(several: comma-separated\) or --secret/);
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

describe('alerts listen: several secrets', () => {
  const OTHER = 'whsec_listen-test-other-secret-abcdefghijklmnopqrstuvwxyz012';
  const THIRD = 'whsec_listen-test-third-secret-abcdefghijklmnopqrstuvwxyz012';

  it('verifies a webhook signed with any of them (ALERTS_WEBHOOK_SECRET comma-separated, plus --secret), and says which', async () => {
    const listener = await listen(['--port', '0', '--secret', THIRD], { ALERTS_WEBHOOK_SECRET: `${SECRET}, ${OTHER}` });
    expect(listener.stdout()).toContain('with any of 3 secrets');
    for (const [n, secret] of [SECRET, OTHER, THIRD].entries()) {
      const hook = webhook({ eventId: `evt_secret${n + 1}` });
      expect(await post(listener.url, hook.body, signedHeaders(hook.eventId, hook.body, secret))).toEqual({ status: 200, body: { ok: true, event_id: hook.eventId } });
    }
    const unknown = webhook({ eventId: 'evt_unknown' });
    expect((await post(listener.url, unknown.body, signedHeaders(unknown.eventId, unknown.body, 'whsec_nobody'))).body).toEqual({ ok: false, reason: 'invalid_signature' });
    // Signed by the second secret but stale: that secret's reason, not invalid_signature.
    const stale = webhook({ eventId: 'evt_stale' });
    const staleAt = Math.floor(Date.now() / 1000) - 400;
    expect((await post(listener.url, stale.body, signedHeaders(stale.eventId, stale.body, OTHER, staleAt))).body).toEqual({ ok: false, reason: 'timestamp_too_old' });

    await listener.waitForStdout(/REJECTED timestamp_too_old/);
    const lines = listener.stdout().trimEnd().split('\n').slice(1);
    expect(lines.map((line) => line.replace(/^\S+ /, '').replace(/ rule=.*?(\[secret \d\])?$/, ' $1').trim())).toEqual([
      'verified evt_secret1 alerts.triggered [secret 1]',
      'verified evt_secret2 alerts.triggered [secret 2]',
      'verified evt_secret3 alerts.triggered [secret 3]',
      'REJECTED invalid_signature event_id=evt_unknown',
      'REJECTED timestamp_too_old event_id=evt_stale',
    ]);
    for (const secret of [SECRET, OTHER, THIRD]) expect(listener.stdout() + listener.stderr()).not.toContain(secret);
  });
});

describe('alerts listen --tls', () => {
  const SETTINGS = /^ {2}NODE_EXTRA_CA_CERTS=(\S+) ALERTS_WEBHOOK_ALLOWED_CIDRS=(\S+)$/m;

  it('without a secret makes a throwaway certificate, prints the settings to start the service with, and exits 0; a later run reuses it', async () => {
    const home = tempDir();
    const first = await runCli(['listen', '--tls'], { cwd: home, env: { HOME: home } });
    expect(first.code, first.stderr).toBe(0);
    const certPath = join(home, '.cache', 'alerts', 'listen-tls', 'cert.pem');
    const keyPath = join(home, '.cache', 'alerts', 'listen-tls', 'key.pem');
    expect(first.stdout).toContain(`\n  NODE_EXTRA_CA_CERTS=${certPath} ALERTS_WEBHOOK_ALLOWED_CIDRS=127.0.0.1/32\n`);
    expect(first.stdout).toContain(`for example:  NODE_EXTRA_CA_CERTS=${certPath} ALERTS_WEBHOOK_ALLOWED_CIDRS=127.0.0.1/32 npm start\n`);
    expect(first.stdout).toContain('Endpoint URL to register: https://127.0.0.1:9000/\n');
    expect(first.stdout).toContain('(made now)');
    expect(first.stdout).toMatch(/No signing secret given, so not listening yet\./);
    expect(first.stdout).toContain('ALERTS_WEBHOOK_SECRET=whsec_... alerts listen --tls\n');

    // A leaf for the loopback names only: trusting it trusts nothing else.
    const cert = new X509Certificate(readFileSync(certPath));
    expect(cert.ca).toBe(false);
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(cert.checkIP('::1')).toBeDefined();
    expect(cert.checkHost('localhost')).toBe('localhost');
    expect(cert.checkHost('example.com')).toBeUndefined();
    expect(cert.issuer).toBe(cert.subject);
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(Date.parse(cert.validTo) - Date.now()).toBeGreaterThan(29 * 24 * 3600_000);
    expect(statSync(keyPath).mode & 0o077).toBe(0);
    expect(statSync(join(home, '.cache', 'alerts', 'listen-tls')).mode & 0o077).toBe(0);

    const again = await runCli(['listen', '--tls', '--port', '9443'], { cwd: home, env: { HOME: home } });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('(made earlier, reused)');
    expect(again.stdout).toContain('Endpoint URL to register: https://127.0.0.1:9443/\n');
    expect(again.stdout).toContain('alerts listen --tls --port 9443\n');
    expect(new X509Certificate(readFileSync(certPath)).fingerprint256).toBe(cert.fingerprint256);
  });

  it('serves HTTPS with that certificate: a client trusting just it connects to 127.0.0.1, ::1 and localhost', async () => {
    const dir = tempDir();
    const listener = await listen(['--port', '0', '--host', '::', '--tls-dir', dir], { ALERTS_WEBHOOK_SECRET: SECRET });
    expect(listener.stdout()).toMatch(SETTINGS);
    const [, certPath, cidrs] = listener.stdout().match(SETTINGS)!;
    expect(certPath).toBe(join(dir, 'cert.pem'));
    expect(cidrs).toBe('127.0.0.1/32');
    const port = Number(new URL(listener.url.replace('[::]', '127.0.0.1')).port);
    expect(listener.stdout()).toContain(`Endpoint URL to register: https://127.0.0.1:${port}/\n`);
    const ca = readFileSync(certPath!);
    for (const host of ['127.0.0.1', '::1', 'localhost']) {
      const status = await new Promise<number>((resolve, reject) => {
        const req = httpsRequest({ host, port, method: 'GET', path: '/', ca }, (res) => {
          res.resume();
          resolve(res.statusCode!);
        });
        req.on('error', reject);
        req.end();
      });
      expect(status, host).toBe(405);
    }
  });

  it('refuses --tls together with --cert/--key', async () => {
    const home = tempDir();
    const result = await runCli(['listen', '--tls', '--cert', 'c.pem', '--key', 'k.pem', '--secret', SECRET], { cwd: home, env: { HOME: home } });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('give either --tls or --cert/--key');
  });

  it('replaces a certificate that expires within a day, and says a service trusting the old one must restart', () => {
    const dir = tempDir();
    const old = ensureThrowawayCert(dir, undefined, new Date(Date.now() - 29.5 * 24 * 3600_000));
    expect(old.created).toBe(true);
    const reused = ensureThrowawayCert(dir, undefined, new Date(Date.now() - 29 * 24 * 3600_000));
    expect(reused.created).toBe(false);
    const fresh = ensureThrowawayCert(dir);
    expect(fresh).toMatchObject({ created: true, replaced: true });
    expect(new X509Certificate(fresh.cert).fingerprint256).not.toBe(new X509Certificate(old.cert).fingerprint256);
    // A host the certificate does not name yet makes a new one that names it too.
    const wider = ensureThrowawayCert(dir, ['127.0.0.1', '::1', 'localhost', 'dev.localhost']);
    expect(wider.created).toBe(true);
    expect(new X509Certificate(wider.cert).checkHost('dev.localhost')).toBe('dev.localhost');
  });
});

describe('POST .../test ending in blocked_address', () => {
  it('says which setting opens a range, and never the address a name resolved to', async () => {
    server = await startTestServer({ lookup: loopbackLookup({ 'receiver.test': '127.0.0.1' }) });
    const answers: any[] = [];
    for (const url of ['https://127.0.0.1:9/hook', 'https://receiver.test:9/hook']) {
      const created = await server.request('POST', '/v1/webhook-endpoints', { body: { name: url, url, event_types: ['alerts.triggered'], timeout_ms: 1000 } });
      expect(created.status, created.text).toBe(201);
      const res = await server.request('POST', `/v1/webhook-endpoints/${created.body.id}/test`);
      expect(res.status, res.text).toBe(200);
      answers.push(res.body);
    }
    for (const answer of answers) {
      expect(answer).toMatchObject({ delivered: false, status_code: null, error_class: 'blocked_address' });
      expect(answer.error).toMatch(/ALERTS_WEBHOOK_ALLOWED_CIDRS opens ranges for local receivers/);
    }
    // The literal is the tenant's own text; the name's address is not said.
    expect(answers[0].error).toMatch(/^127\.0\.0\.1 is a loopback address; /);
    expect(answers[1].error).toMatch(/^receiver\.test resolves only to addresses webhooks may not reach; /);
    expect(JSON.stringify(answers[1])).not.toMatch(/127\.0\.0\.1|loopback/);
  });
});
