import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Fastify from 'fastify';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CONSOLE_CSP, consolePlugin, findConsoleDir } from '../src/http/console.js';
import { startHttpsReceiver, type HttpsReceiver } from './helpers/https-receiver.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { signatureMatches } from './helpers/webhook-fixtures.js';

/**
 * The operator console in a real browser (Debian's headless Chromium, driven by
 * playwright-core) against the real service: what an operator sees and does, from logging
 * in to following a rule into alert and testing a webhook endpoint. Screenshots of every
 * page land in test-results/console/.
 */

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** Debian's chromium package; CHROMIUM_PATH names another binary. A browser is never downloaded. */
const CHROMIUM = process.env.CHROMIUM_PATH?.trim() || '/usr/bin/chromium';
const SHOTS = join(ROOT, 'test-results', 'console');
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
];
/** Long enough for the polling fallback (every 5 s) where the server has no stream yet. */
const LIVE_TIMEOUT_MS = 12_000;

// The console is built from the current source by the global setup (test/global-setup.ts).
beforeAll(() => {
  mkdirSync(SHOTS, { recursive: true });
});

describe('serving the console', () => {
  let server: TestServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('serves index.html on its routes and hashed assets for good, all under the console CSP', async () => {
    const s = (server = await startTestServer());
    const get = (path: string, headers: Record<string, string> = {}) => fetch(s.baseUrl + path, { headers });

    const index = await get('/console');
    expect(index.status, 'is consolePlugin registered in src/http/app.ts? (await app.register(consolePlugin))').toBe(200);
    const html = await index.text();
    expect(index.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(index.headers.get('cache-control')).toBe('no-cache');
    expect(index.headers.get('content-security-policy')).toBe(CONSOLE_CSP);
    const etag = index.headers.get('etag');
    expect(etag).toMatch(/^"[A-Za-z0-9_-]+"$/);
    expect(html).toContain('/console/assets/');
    expect(html).not.toMatch(/https?:\/\//);

    for (const path of ['/console/', '/console/rules', '/console/rules/ar_x?tab=1']) {
      const other = await get(path);
      expect(other.status, path).toBe(200);
      expect(await other.text()).toBe(html);
    }
    const cached = await get('/console/', { 'if-none-match': etag! });
    expect(cached.status).toBe(304);
    expect(cached.headers.get('etag')).toBe(etag);

    const script = /src="\/console\/(assets\/[^"]+\.js)"/.exec(html)?.[1];
    const style = /href="\/console\/(assets\/[^"]+\.css)"/.exec(html)?.[1];
    expect(script && style).toBeTruthy();
    const js = await get(`/console/${script}`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(js.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(js.headers.get('content-security-policy')).toBe(CONSOLE_CSP);
    expect(await js.text()).not.toMatch(/https?:\/\/(?!www\.w3\.org)[a-z]/i); // no CDN; SVG namespaces are not fetched
    expect((await get(`/console/${script}`, { 'if-none-match': js.headers.get('etag')! })).status).toBe(304);
    expect((await get(`/console/${style}`)).headers.get('content-type')).toBe('text/css; charset=utf-8');

    const missing = await get('/console/assets/nope-123.js');
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-security-policy')).toBe(CONSOLE_CSP);
    expect(await missing.json()).toEqual({ message: 'no console asset nope-123.js' });
    expect((await get('/console/favicon.ico')).status).toBe(404);

    // Hidden from the API's description.
    const openapi = (await (await get('/openapi.json')).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(openapi.paths).filter((p) => p.startsWith('/console'))).toEqual([]);
  });

  it('answers 503 with a hint when the console was not built', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'console-empty-'));
    const app = Fastify();
    try {
      await app.register(consolePlugin, { dir: empty });
      for (const url of ['/console', '/console/rules', '/console/assets/x.js']) {
        const res = await app.inject({ url });
        expect(res.statusCode, url).toBe(503);
        expect(res.json()).toEqual({ message: 'the console was not built: run npm run build' });
      }
    } finally {
      await app.close();
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('finds the build from the compiled module and from the source', () => {
    const built = join(ROOT, 'dist', 'console') + '/';
    expect(findConsoleDir(new URL('../dist/src/http/console.js', import.meta.url).href)).toBe(built);
    expect(findConsoleDir(new URL('../src/http/console.ts', import.meta.url).href)).toBe(built);
  });
});

describe('the console’s event-stream parser', () => {
  /** console/src/sse.js, plain browser JavaScript (no types: the project does not check JS). */
  async function parser(): Promise<(chunk: string) => { event: string; data: string; id: string | null; hasId: boolean }[]> {
    const module = await import(pathToFileURL(join(ROOT, 'console', 'src', 'sse.js')).href);
    return module.createEventStreamParser();
  }

  it('reads events split anywhere, with any line ending, comments, multi-line data and ids', async () => {
    const text =
      ': keep-alive\r\n\r\nevent: rule\r\ndata: {"id":"ar_1"}\r\n\r\n' +
      'id: t-1\nevent: transition\ndata: {"rule_id":\ndata:"ar_1"}\n\n' +
      'event: reset\rdata\r\r' +
      'data: no event name\n\nid: t-2\n\n';
    const whole = (await parser())(text);
    // One character at a time, as a slow network might deliver it.
    const push = await parser();
    const split = [...text].flatMap((c) => push(c));
    for (const events of [whole, split]) {
      expect(events).toEqual([
        { event: 'rule', data: '{"id":"ar_1"}', id: null, hasId: false },
        { event: 'transition', data: '{"rule_id":\n"ar_1"}', id: 't-1', hasId: true },
        { event: 'reset', data: '', id: 't-1', hasId: false },
        { event: 'message', data: 'no event name', id: 't-1', hasId: false },
      ]);
    }
  });
});

describe('the console in a browser', () => {
  let server: TestServer | undefined;
  let receiver: HttpsReceiver | undefined;
  let browser: Browser | undefined;
  let lastPage: Page | undefined;
  /** What went wrong inside the page: uncaught errors and console errors (CSP violations among them). */
  let pageProblems: string[] = [];

  beforeAll(() => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`no Chromium at ${CHROMIUM}: these tests need Debian's chromium package (apt-get install chromium); they never download a browser`);
    }
  });

  beforeEach(async () => {
    pageProblems = [];
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  });

  afterEach(async (context) => {
    // A failed test leaves a picture of where it stood.
    if (context.task.result?.state === 'fail' && lastPage) {
      await lastPage.screenshot({ path: join(SHOTS, `failed-${context.task.name.slice(0, 40).replace(/\W+/g, '-')}.png`), fullPage: true }).catch(() => {});
    }
    await browser?.close();
    await server?.close();
    await receiver?.close();
    browser = server = receiver = lastPage = undefined;
  });

  async function open(s: TestServer): Promise<Page> {
    const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
    lastPage = page;
    page.setDefaultTimeout(10_000);
    page.on('pageerror', (error) => pageProblems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      // The browser logs every 4xx the console handles itself (a wrong key, a 404 stream).
      if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) pageProblems.push(message.text());
    });
    const answer = await page.goto(`${s.baseUrl}/console/`);
    if (answer?.status() !== 200) {
      throw new Error(`GET /console/ answered ${answer?.status()}: is consolePlugin registered in src/http/app.ts (await app.register(consolePlugin))?`);
    }
    return page;
  }

  async function logIn(page: Page, key: string): Promise<void> {
    await page.getByLabel('API key').fill(key);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { level: 1, name: 'Rules' }).waitFor();
  }

  const shot = (page: Page, name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });

  it('logs in with an API key, follows a rule into alert live, shows its chart and history, and logs out', async () => {
    server = await startTestServer();
    const created = await server.request('POST', '/v1/alert-rules', {
      body: { name: 'API errors', project_id: null, metric: 'api_errors', operator: '>', threshold_value: 2, window_duration: '5m' },
    });
    expect(created.status).toBe(201);
    const ruleId = created.body.id as string;

    const page = await open(server);
    await shot(page, 'login');
    // No answer at all: the console says the network failed.
    await page.route('**/v1/alert-rules', (route) => route.abort('connectionrefused'));
    await page.getByLabel('API key').fill(server.key);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('alert').filter({ hasText: 'Network failure' }).waitFor();
    await page.unroute('**/v1/alert-rules');
    // A wrong key: the API's own words.
    await page.getByLabel('API key').fill('not-a-key');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('alert').filter({ hasText: 'invalid or revoked API key' }).waitFor();

    // The right one, by keyboard alone: the field has focus, Enter submits.
    await page.getByLabel('API key').fill('');
    await page.getByLabel('API key').focus();
    await page.keyboard.type(server.key);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Rules' }).waitFor();
    expect(await page.evaluate(() => Object.values((globalThis as any).sessionStorage))).toEqual([server.key]);

    const row = page.locator(`tr[data-rule-id="${ruleId}"]`);
    await expect(row.locator('th').innerText()).resolves.toContain('API errors');
    expect(await row.locator('td').allInnerTexts()).toEqual(expect.arrayContaining(['whole account', 'api_errors', '> 2', '5m', 'no_data']));
    await shot(page, 'rules');

    // Telemetry through the API; the page must not reload to show it.
    await page.evaluate(() => ((globalThis as any).notReloaded = true));
    const sent = await server.request('POST', '/v1/telemetry/events', { body: { events: [{ type: 'api_error' }, { type: 'api_error' }, { type: 'api_error' }] } });
    expect(sent.status).toBe(202);
    await row.locator('.badge[data-state="alert"]').waitFor({ timeout: LIVE_TIMEOUT_MS });
    expect(await row.locator('td.num').innerText()).toBe('3');
    expect(await page.evaluate(() => (globalThis as any).notReloaded)).toBe(true);
    await shot(page, 'rules-alert');

    // The rule's page: chart with threshold and alert shading, and the transition in the history.
    await row.getByRole('link', { name: 'API errors' }).click();
    await page.getByRole('heading', { level: 1, name: 'API errors' }).waitFor();
    await page.locator('.chart-plot canvas').waitFor();
    await page.locator('.timeline li').filter({ hasText: 'alerts.triggered' }).waitFor();
    const entry = await page.locator('.timeline li').first().innerText();
    expect(entry).toContain('no_data');
    expect(entry).toContain('alert');
    expect(entry).toContain('value 3');
    await expect(page.locator('.chart figcaption').innerText()).resolves.toMatch(/^360 points; [1-9]\d* in alert \(shaded\); threshold > 2 .*latest value 3\.$/);
    await shot(page, 'rule');
    await page.getByRole('button', { name: 'Last day' }).click();
    await page.locator('.chart figcaption').filter({ hasText: '1440 points' }).waitFor();
    await shot(page, 'rule-day');

    // Keyboard only: Tab from the top reaches the Endpoints link, with a visible focus ring;
    // Enter follows it, and focus lands on the new page's heading.
    await page.locator('.skip-link').focus();
    for (let i = 0; i < 6 && (await page.evaluate(() => (globalThis as any).document.activeElement?.textContent)) !== 'Endpoints'; i += 1) {
      await page.keyboard.press('Tab');
    }
    const focused = await page.evaluate(() => {
      const active = (globalThis as any).document.activeElement;
      return { text: active?.textContent, outline: (globalThis as any).getComputedStyle(active).outlineStyle };
    });
    expect(focused).toEqual({ text: 'Endpoints', outline: 'solid' });
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Endpoints' }).waitFor();
    await page.waitForFunction(() => (globalThis as any).document.activeElement?.id === 'page-title', undefined, { timeout: 2000 });
    await page.getByText('No endpoints yet: create one').waitFor();

    await page.getByRole('button', { name: 'Log out' }).focus();
    await page.keyboard.press('Enter');
    await page.getByLabel('API key').waitFor();
    await page.getByText('You are logged out.').waitFor();
    expect(await page.evaluate(() => (globalThis as any).sessionStorage.length)).toBe(0);
    // Forgotten for good: a reload does not log back in.
    await page.reload();
    await page.getByLabel('API key').waitFor();
    expect(pageProblems).toEqual([]);
  });

  it('previews a new rule before saving it and shows the API’s validation message', async () => {
    server = await startTestServer();
    const page = await open(server);
    // As on a server without the stream: the console says so and polls instead.
    await page.route('**/v1/stream', (route) => route.fulfill({ status: 404, contentType: 'application/json', body: '{"message":"no route for GET /v1/stream"}' }));
    await logIn(page, server.key);
    await page.getByText('No rules yet: create one').waitFor();
    await page.getByRole('status').filter({ hasText: 'Live updates unavailable' }).waitFor();

    await page.getByRole('button', { name: 'New rule' }).click();
    await page.getByLabel('Name').fill('Slow turns');
    await page.getByLabel('Metric').selectOption('turn_latency_p95');
    await page.getByLabel('Threshold').fill('-1');
    await page.getByRole('button', { name: 'Create rule' }).click();
    // Exactly what the API says about this body.
    const rejected = await server.request('POST', '/v1/alert-rules', {
      body: { name: 'Slow turns', project_id: null, metric: 'turn_latency_p95', operator: '>', threshold_value: -1, window_duration: '5m', enabled: true },
    });
    expect(rejected.status).toBe(400);
    const alert = page.locator('#rule-form-error');
    await alert.waitFor();
    expect(await alert.getAttribute('role')).toBe('alert');
    const shown = await alert.innerText();
    expect(shown).toContain(rejected.body.message);
    for (const problem of rejected.body.errors) expect(shown).toContain(problem.message);
    await page.locator('#rule-threshold_value-error').waitFor();
    await shot(page, 'rule-form-error');

    // A valid threshold: the preview draws the candidate over the last hour before it is saved.
    await server.request('POST', '/v1/telemetry/events', { body: { events: [{ type: 'turn', latency_ms: 2500 }, { type: 'turn', latency_ms: 2600 }] } });
    await page.getByLabel('Threshold').fill('1500');
    await page.locator('.preview .chart-plot canvas').waitFor();
    await page.locator('.preview').filter({ hasText: /Would have sent 1 alerts\.triggered event \(/ }).waitFor();
    expect((await server.request('GET', '/v1/alert-rules')).body.data).toEqual([]);
    await shot(page, 'rule-form-preview');

    await page.getByRole('button', { name: 'Create rule' }).click();
    const row = page.locator('tbody tr').filter({ hasText: 'Slow turns' });
    await row.waitFor();
    expect(await row.innerText()).toContain('> 1,500');
    await row.locator('.badge[data-state="alert"]').waitFor();
    expect((await server.request('GET', '/v1/alert-rules')).body.data).toHaveLength(1);

    // Disable, then delete after confirming.
    await row.getByRole('button', { name: 'Disable Slow turns' }).click();
    await row.getByText('disabled', { exact: true }).waitFor();
    await row.getByRole('button', { name: 'Delete Slow turns' }).click();
    await row.getByRole('button', { name: 'Delete rule' }).click();
    await page.getByText('No rules yet: create one').waitFor();
    expect((await server.request('GET', '/v1/alert-rules')).body.data).toEqual([]);

    // A rule made elsewhere shows up by polling alone.
    await server.request('POST', '/v1/alert-rules', { body: { name: 'Made elsewhere', metric: 'call_volume', operator: '<', threshold_value: 1, window_duration: '10m' } });
    await page.locator('tbody tr').filter({ hasText: 'Made elsewhere' }).waitFor({ timeout: LIVE_TIMEOUT_MS });
    expect(pageProblems).toEqual([]);
  });

  it('creates a webhook endpoint, shows its secret once, sends a test event and shows deliveries with their attempts', async () => {
    receiver = await startHttpsReceiver();
    receiver.setDefault({ status: 200, body: 'thanks from the receiver' });
    // Loopback receivers are refused unless allowed; the worker delivers real alerts.
    server = await startTestServer({ env: { ALERTS_WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8', ALERTS_DELIVERY_WORKER: 'on' } });
    const page = await open(server);
    await logIn(page, server.key);
    await page.getByRole('link', { name: 'Endpoints' }).click();
    await page.getByRole('heading', { level: 1, name: 'Endpoints' }).waitFor();
    await page.getByText('No endpoints yet: create one').waitFor();

    await page.getByRole('button', { name: 'New endpoint' }).click();
    await page.getByLabel('Name').fill('Receiver');
    await page.getByLabel('URL').fill(receiver.url);
    await page.getByRole('button', { name: 'Create endpoint' }).click();
    const secretField = page.getByRole('textbox', { name: 'Signing secret' });
    await secretField.waitFor();
    const secret = await secretField.inputValue();
    expect(secret.length).toBeGreaterThan(20);
    await page.getByText('it will not be shown again').waitFor();
    await shot(page, 'endpoint-secret');

    // The secret shown is the one that signs: a test event verifies with it.
    const card = page.locator('li.card').filter({ hasText: 'Receiver' });
    await card.getByRole('button', { name: 'Send test event' }).click();
    const result = card.locator('.test-result');
    await result.filter({ hasText: 'HTTP 200' }).waitFor();
    expect(await result.innerText()).toMatch(/delivered[\s\S]*HTTP 200 in \d+ ms[\s\S]*thanks from the receiver/);
    expect(receiver.requests).toHaveLength(1);
    expect(signatureMatches(receiver.requests[0]!, secret)).toBe(true);
    await shot(page, 'endpoint-test');

    // Once: gone after "Done", and never again after a reload.
    await page.getByRole('button', { name: 'Done' }).click();
    expect(await secretField.count()).toBe(0);
    await page.reload();
    await card.waitFor();
    expect(await secretField.count()).toBe(0);
    await card.getByText('No deliveries yet.').waitFor();

    // A real alert: its delivery and attempt appear, and "Retry now" adds an attempt.
    const rule = await server.request('POST', '/v1/alert-rules', {
      body: { name: 'Errors', project_id: null, metric: 'api_errors', operator: '>', threshold_value: 0, window_duration: '5m' },
    });
    expect(rule.status).toBe(201);
    await server.request('POST', '/v1/telemetry/events', { body: { events: [{ type: 'api_error' }] } });
    const delivery = card.locator('li.delivery').first();
    await delivery.filter({ hasText: 'delivered' }).waitFor({ timeout: LIVE_TIMEOUT_MS });
    expect(await delivery.innerText()).toMatch(/alerts\.triggered[\s\S]*1 attempt\b[\s\S]*HTTP 200[\s\S]*thanks from the receiver/);
    await delivery.getByRole('button', { name: /Retry delivery .* now/ }).click();
    // The second attempt is counted when it starts, listed once it has an outcome.
    await delivery.locator('table.attempts tbody tr').nth(1).waitFor({ timeout: LIVE_TIMEOUT_MS });
    expect(await delivery.innerText()).toContain('2 attempts');
    expect(await delivery.locator('table.attempts tbody tr').count()).toBe(2);
    await shot(page, 'endpoints');

    // Rotating shows the new secret the same way.
    await card.getByRole('button', { name: 'Rotate secret' }).click();
    await card.getByRole('button', { name: 'Rotate now' }).click();
    const rotated = await card.getByRole('textbox', { name: 'Signing secret' }).inputValue();
    expect(rotated).not.toBe(secret);
    expect(pageProblems).toEqual([]);
  });

  it('reads the stream, resumes it with the last event id, and reloads on reset', async () => {
    server = await startTestServer();
    const created = await server.request('POST', '/v1/alert-rules', {
      body: { name: 'Streamed', project_id: 'proj_a', metric: 'call_volume', operator: '<', threshold_value: 5, window_duration: '60m' },
    });
    const ruleId = created.body.id as string;
    const page = await open(server);
    // A stream of our own, to pin the contract: the first connection sends one change and
    // ends; the console must come back with the last id it saw.
    const requests: (string | undefined)[] = [];
    const keys = new Set<string | undefined>();
    await page.route('**/v1/stream', async (route) => {
      const headers = route.request().headers();
      requests.push(headers['last-event-id']);
      keys.add(headers['x-api-key']);
      const body =
        requests.length === 1
          ? `: keep-alive\n\nevent: rule\ndata: ${JSON.stringify({ id: ruleId, name: 'Streamed', current_state: 'alert', current_value: 42, since: new Date().toISOString(), last_evaluated_at: new Date().toISOString(), enabled: true })}\n\n` +
            `id: tr-7\nevent: transition\ndata: ${JSON.stringify({ rule_id: ruleId })}\n\n`
          : 'event: reset\ndata: {}\n\n';
      await route.fulfill({ status: 200, headers: { 'content-type': 'text/event-stream' }, body });
    });
    await logIn(page, server.key);
    const row = page.locator(`tr[data-rule-id="${ruleId}"]`);
    await row.locator('.badge[data-state="alert"]').waitFor();
    expect(await row.locator('td.num').innerText()).toBe('42');
    // The reset makes the console reload the rules: the server's own state comes back.
    await row.locator('.badge[data-state="no_data"]').waitFor();
    expect(requests.slice(0, 2)).toEqual([undefined, 'tr-7']);
    expect([...keys]).toEqual([server.key]);
    expect(pageProblems).toEqual([]);
  });
});
