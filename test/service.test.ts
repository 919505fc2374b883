import { randomBytes } from 'node:crypto';
import { request as httpRequest, Agent, type IncomingMessage } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BODY_LIMIT_BYTES } from '../src/http/app.js';
import { databaseUrlFor, dropDatabaseFor } from './helpers/database.js';
import { killAllChildren, lastLine, runCli, startCliServer, type CliServer } from './helpers/cli-process.js';
import { endpointBody, ruleBody, startTestServer, type TestServer } from './helpers/server.js';

/** A stack frame or a source location; neither may ever reach a client. */
const STACK_TRACE = /\n\s+at |\bat [\w.<>]+ \(|(?:file:\/\/|\/work\/|node_modules|\.ts:\d+|\.js:\d+)/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface LogLine {
  level: number;
  msg?: string;
  reqId?: string;
  responseTime?: number;
  res?: { statusCode?: number };
  req?: { method?: string; url?: string };
  [field: string]: unknown;
}

function parseLogs(stdout: string): LogLine[] {
  return stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      try {
        return JSON.parse(line) as LogLine;
      } catch {
        throw new Error(`log line is not JSON: ${line}`);
      }
    });
}

interface RawResponse {
  status: number;
  headers: IncomingMessage['headers'];
  text: string;
}

/** True once a fresh request is refused with 503 or the connection itself is refused. */
async function refusesNewRequests(server: CliServer, timeoutMs = 3000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    // A new connection each time (agent: false), so a pooled one cannot answer for it.
    const outcome = await new Promise<number | 'refused'>((resolve) => {
      const req = httpRequest({ host: '127.0.0.1', port: server.port, path: '/healthz', agent: false }, (res) =>
        collect(res).then((r) => resolve(r.status), () => resolve('refused')),
      );
      req.on('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED' || error.code === 'ECONNRESET' ? 'refused' : -1));
      req.end();
    });
    if (outcome === 'refused' || outcome === 503) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return false;
}

function collect(res: IncomingMessage): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => (text += chunk));
    res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    res.on('error', reject);
  });
}

describe('the service as a process', () => {
  let dir: string;
  let dbPath: string;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'alerts-service-test-'));
    dbPath = await databaseUrlFor(dir);
  });
  afterEach(async () => {
    await killAllChildren();
    rmSync(dir, { recursive: true, force: true });
    await dropDatabaseFor(dir);
  });

  async function createKey(account: string): Promise<string> {
    const result = await runCli(['keys', 'create', '--account', account], { cwd: dir, env: { DATABASE_URL: dbPath } });
    expect(result.code, result.stderr).toBe(0);
    return lastLine(result.stdout);
  }

  const serve = (env: Record<string, string> = {}): Promise<CliServer> => startCliServer({ cwd: dir, env: { DATABASE_URL: dbPath, ...env } });

  async function call(server: CliServer, method: string, path: string, options: { key?: string; body?: unknown; headers?: Record<string, string> } = {}) {
    const headers: Record<string, string> = { ...options.headers };
    if (options.key) headers['x-api-key'] = options.key;
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(server.baseUrl + path, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });
    const text = await res.text();
    return { status: res.status, text, body: text === '' ? undefined : (JSON.parse(text) as any), headers: res.headers };
  }

  it('writes JSON log lines that carry the request id, status code and response time of each request', async () => {
    const key = await createKey('acme');
    const server = await serve();
    const ok = await call(server, 'GET', '/v1/alert-rules', { key, headers: { 'x-request-id': 'trace-ok-1' } });
    expect(ok.status).toBe(200);
    const rejected = await call(server, 'GET', '/v1/alert-rules', { headers: { 'x-request-id': 'trace-401-1' } });
    expect(rejected.status).toBe(401);
    const generated = await call(server, 'GET', '/v1/alert-rules', { key });
    const generatedId = generated.headers.get('x-request-id')!;
    // Health probes come every few seconds: a healthy one is not logged.
    const probe = await call(server, 'GET', '/healthz', { headers: { 'x-request-id': 'probe-1' } });
    expect(probe.status).toBe(200);
    expect((await server.stop()).code).toBe(0);

    const logs = parseLogs(server.stdout());
    expect(logs.length).toBeGreaterThan(0);
    for (const line of logs) {
      expect(typeof line.level).toBe('number');
      expect(typeof line.msg).toBe('string');
    }
    const completed = (reqId: string) => logs.find((l) => l.reqId === reqId && l.res?.statusCode !== undefined);
    for (const [reqId, statusCode] of [
      ['trace-ok-1', 200],
      ['trace-401-1', 401],
      [generatedId, 200],
    ] as const) {
      const line = completed(reqId);
      expect(line, `a completion log line for ${reqId}`).toBeDefined();
      expect(line!.res!.statusCode).toBe(statusCode);
      expect(typeof line!.responseTime).toBe('number');
      expect(line!.responseTime).toBeGreaterThanOrEqual(0);
    }
    expect(logs.filter((l) => l.reqId === 'probe-1')).toEqual([]);
  });

  it('never logs the API key or a webhook signing secret, before or after rotation', async () => {
    const key = await createKey('acme');
    const bootstrapKey = 'bootstrap_' + randomBytes(24).toString('hex');
    const server = await serve({ LOG_LEVEL: 'trace', ALERTS_BOOTSTRAP_API_KEY: bootstrapKey });

    const created = await call(server, 'POST', '/v1/webhook-endpoints', { key, body: endpointBody({ url: 'https://127.0.0.1:9/hook' }) });
    expect(created.status).toBe(201);
    const firstSecret: string = created.body.signing_secret;
    const rotated = await call(server, 'POST', `/v1/webhook-endpoints/${created.body.id}/rotate-secret`, { key });
    expect(rotated.status).toBe(200);
    const secondSecret: string = rotated.body.signing_secret;
    expect(firstSecret).toBeTruthy();
    expect(secondSecret).toBeTruthy();
    expect(secondSecret).not.toBe(firstSecret);

    // Requests that fail, carrying credentials in headers and bodies, are logged too.
    expect((await call(server, 'PATCH', `/v1/webhook-endpoints/${created.body.id}`, { key, body: { signing_secret: secondSecret } })).status).toBe(400);
    expect((await call(server, 'POST', '/v1/webhook-endpoints', { key, body: { name: firstSecret, url: `http://${secondSecret}` } })).status).toBe(400);
    expect((await call(server, 'GET', '/v1/alert-rules', { key: bootstrapKey })).status).toBe(200);
    expect((await call(server, 'GET', '/v1/no-such-route', { key })).status).toBe(404);
    const wrongKey = 'alk_' + randomBytes(32).toString('base64url').replace(/[-_]/g, 'x').slice(0, 43);
    expect((await call(server, 'GET', '/v1/alert-rules', { key: wrongKey })).status).toBe(401);
    expect((await server.stop()).code).toBe(0);

    const output = server.stdout() + server.stderr();
    expect(parseLogs(server.stdout()).length).toBeGreaterThan(5);
    for (const secret of [key, bootstrapKey, wrongKey, firstSecret, secondSecret]) {
      expect(output.includes(secret), `log output must not contain ${secret.slice(0, 8)}…`).toBe(false);
    }
  });

  it('finishes a request still being received when SIGTERM arrives, refuses new ones, then exits 0', async () => {
    const key = await createKey('acme');
    const server = await serve();
    const body = Buffer.from(JSON.stringify(ruleBody({ name: 'arrives slowly' })));
    const half = Math.floor(body.length / 2);
    const agent = new Agent({ keepAlive: true });

    try {
      const req = httpRequest({
        host: '127.0.0.1',
        port: server.port,
        method: 'POST',
        path: '/v1/alert-rules',
        agent,
        headers: { 'x-api-key': key, 'content-type': 'application/json', 'content-length': String(body.length), 'x-request-id': 'slow-1' },
      });
      const response = new Promise<RawResponse>((resolve, reject) => {
        req.on('response', (res) => collect(res).then(resolve, reject));
        req.on('error', reject);
      });
      req.write(body.subarray(0, half));
      // The server has the request in hand once it has logged it.
      await server.waitForStdout(/"reqId":"slow-1"/);

      server.child.kill('SIGTERM');
      await server.waitForStdout('shutting down');
      // New requests are refused (503 while closing, then no connection at all).
      expect(await refusesNewRequests(server)).toBe(true);
      let exitedEarly = false;
      void server.exited.then(() => (exitedEarly = true));
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(exitedEarly, 'the process waits for the request in flight').toBe(false);

      req.end(body.subarray(half));
      const res = await response;
      expect(res.status, res.text).toBe(201);
      expect(JSON.parse(res.text)).toMatchObject({ name: 'arrives slowly', id: expect.stringMatching(/^ar_/) });

      const exit = await server.exited;
      expect(exit, server.stdout() + server.stderr()).toEqual({ code: 0, signal: null });
      expect(server.stdout()).toContain('shut down cleanly');
    } finally {
      agent.destroy();
    }

    // The rule was committed before the process went away.
    const restarted = await serve();
    const listed = await call(restarted, 'GET', '/v1/alert-rules', { key });
    expect(listed.body.data.map((r: { name: string }) => r.name)).toEqual(['arrives slowly']);
  });

  it('does not wait for idle keep-alive connections when shutting down', async () => {
    const key = await createKey('acme');
    const server = await serve({ ALERTS_SHUTDOWN_TIMEOUT_MS: '5000' });
    const agent = new Agent({ keepAlive: true });
    try {
      const res = await new Promise<RawResponse>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port: server.port, path: '/v1/alert-rules', agent, headers: { 'x-api-key': key } });
        req.on('response', (r) => collect(r).then(resolve, reject));
        req.on('error', reject);
        req.end();
      });
      expect(res.status).toBe(200);
      const started = Date.now();
      const exit = await server.stop('SIGTERM');
      expect(exit).toEqual({ code: 0, signal: null });
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      agent.destroy();
    }
  });

  it('exits 0 on SIGINT as well', async () => {
    const server = await serve();
    expect((await call(server, 'GET', '/healthz')).status).toBe(200);
    const exit = await server.stop('SIGINT');
    expect(exit, server.stderr()).toEqual({ code: 0, signal: null });
    expect(server.stdout()).toContain('shut down cleanly');
  });
});

describe('the HTTP layer', () => {
  let server: TestServer;

  beforeEach(async () => {
    server = await startTestServer();
  });
  afterEach(async () => {
    await server.close();
  });

  it('answers /healthz with 200 {status: "ok"} without an API key', async () => {
    const res = await server.request('GET', '/healthz', { key: null });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok' });
  });

  it('sets the security headers on API responses, successful or not', async () => {
    const responses = [
      await server.request('GET', '/v1/alert-rules'),
      await server.request('GET', '/v1/alert-rules', { key: null }),
      await server.request('GET', '/v1/alert-rules/ar_0000000000000000000000'),
      await server.request('POST', '/v1/alert-rules', { body: { name: 1 } }),
      await server.request('GET', '/nowhere'),
      await server.request('GET', '/healthz', { key: null }),
    ];
    expect(responses.map((r) => r.status)).toEqual([200, 401, 404, 400, 404, 200]);
    for (const res of responses) {
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      expect(res.headers.get('content-security-policy')).toMatch(/default-src 'none'/);
    }
  });

  it('echoes a sane x-request-id and generates one otherwise', async () => {
    const echoed = await server.request('GET', '/v1/alert-rules', { headers: { 'x-request-id': 'caller-req.42_a-b' } });
    expect(echoed.headers.get('x-request-id')).toBe('caller-req.42_a-b');

    const a = (await server.request('GET', '/v1/alert-rules')).headers.get('x-request-id');
    const b = (await server.request('GET', '/v1/alert-rules')).headers.get('x-request-id');
    expect(a).toMatch(UUID);
    expect(b).toMatch(UUID);
    expect(a).not.toBe(b);

    for (const insane of ['has spaces in it', 'x'.repeat(129), 'semi;colon', '<script>', '']) {
      const res = await server.request('GET', '/v1/alert-rules', { headers: { 'x-request-id': insane } });
      expect(res.headers.get('x-request-id'), JSON.stringify(insane)).toMatch(UUID);
    }
  });

  it('answers an unknown route with a 404 JSON {message}', async () => {
    for (const [method, path] of [
      ['GET', '/nowhere'],
      ['GET', '/v1/nowhere'],
      ['DELETE', '/v1/alerts'],
    ] as const) {
      const res = await server.request(method, path);
      expect(res.status).toBe(404);
      expect(res.body).toEqual({ message: expect.any(String) });
    }
  });

  it('answers 413 JSON for a body of 1 MiB + 1 byte, but reads a body of exactly 1 MiB', async () => {
    const ofSize = (size: number) => {
      const shell = JSON.stringify({ ...ruleBody(), name: '' });
      const padded = shell.replace('"name":""', `"name":"${'x'.repeat(size - shell.length)}"`);
      expect(Buffer.byteLength(padded)).toBe(size);
      return padded;
    };
    expect(BODY_LIMIT_BYTES).toBe(1024 * 1024);

    const tooLarge = await server.request('POST', '/v1/alert-rules', { rawBody: ofSize(BODY_LIMIT_BYTES + 1) });
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.body).toEqual({ message: expect.any(String) });

    const atLimit = await server.request('POST', '/v1/alert-rules', { rawBody: ofSize(BODY_LIMIT_BYTES) });
    expect(atLimit.status).not.toBe(413);
    expect(atLimit.status).toBeLessThan(500);
  });

  it('answers 415 JSON for a body that is not JSON', async () => {
    for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml']) {
      const res = await server.request('POST', '/v1/alert-rules', { rawBody: 'name=x', contentType });
      expect(res.status, contentType).toBe(415);
      expect(res.body).toEqual({ message: expect.any(String) });
    }
  });

  it('never includes a stack trace or a source path in an error response', async () => {
    const responses = [
      await server.request('GET', '/nowhere'),
      await server.request('GET', '/v1/alert-rules', { key: null }),
      await server.request('GET', '/v1/alert-rules', { key: 'alk_' + 'x'.repeat(43) }),
      await server.request('GET', '/v1/alert-rules/not-an-id'),
      await server.request('GET', '/v1/alert-rules/ar_0000000000000000000000'),
      await server.request('POST', '/v1/alert-rules', { rawBody: '{"name": "unterminated' }),
      await server.request('POST', '/v1/alert-rules', { rawBody: '{"__proto__": {"polluted": true}}' }),
      await server.request('POST', '/v1/alert-rules', { body: ruleBody({ threshold_value: -1, surprise: true }) }),
      await server.request('POST', '/v1/alert-rules', { rawBody: 'plain', contentType: 'text/plain' }),
      await server.request('POST', '/v1/alert-rules', { rawBody: 'x'.repeat(BODY_LIMIT_BYTES + 1) }),
      await server.request('GET', '/v1/alert-rules?enabled=perhaps'),
    ];
    expect(responses.map((r) => r.status)).toEqual([404, 401, 401, 422, 404, 400, 400, 400, 415, 413, 400]);
    for (const res of responses) {
      expect(res.text).not.toMatch(STACK_TRACE);
      expect(res.body).not.toHaveProperty('stack');
    }
  });

  it('answers an internal failure with a generic 500 message and no stack trace', async () => {
    // Break the database under the running app: every query now fails.
    await server.service.store.close();
    const res = await fetch(`${server.baseUrl}/v1/alert-rules`, { headers: { 'x-api-key': server.key } });
    const text = await res.text();
    expect(res.status).toBe(500);
    expect(JSON.parse(text)).toEqual({ message: 'internal server error' });
    expect(text).not.toMatch(STACK_TRACE);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');

    const health = await fetch(`${server.baseUrl}/healthz`);
    expect(health.status).toBe(503);
    expect(await health.json()).toEqual({ status: 'unavailable', message: expect.stringMatching(/^the database does not answer: /) });
  });
});
