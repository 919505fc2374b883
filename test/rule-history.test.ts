import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { killAllChildren, startCliServer, type CliServer } from './helpers/cli-process.js';
import { databaseUrlFor, dropDatabaseFor, inspectDatabase } from './helpers/database.js';
import { startHttpsReceiver } from './helpers/https-receiver.js';
import { ruleBody, startTestServer, testClock, type TestServer } from './helpers/server.js';
import { createEndpoint, createErrorRule, resolveAlerts, sendApiError } from './helpers/webhook-fixtures.js';

/**
 * GET /v1/alert-rules/{rule_id}/history (ours): every change of state of a rule, newest
 * first, with the event it sent and the rule's settings at that moment; written with the
 * state change, deleted with the rule, pruned after ALERTS_HISTORY_RETENTION, paged by an
 * opaque cursor. Fresh database per test; the clock is injected and the engine is ticked by
 * hand.
 */

const START = Date.parse('2026-03-15T10:30:00.000Z');
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const DAY = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString();

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function server(clock = testClock(START), env: Record<string, string> = {}): Promise<TestServer> {
  const s = await startTestServer({ clock, env: { ALERTS_WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32', ...env } });
  cleanups.push(() => s.close());
  return s;
}

type Transition = {
  event_id: string | null;
  event_type: string | null;
  from_state: string;
  to_state: string;
  value: number | null;
  at: string;
  threshold_value: number;
  operator: string;
  window_duration: string;
  /** The silence that held the event back (ours; test/silences.test.ts). */
  silence_id: string | null;
};
type Page = { data: Transition[]; next_cursor: string | null };

async function historyPage(s: TestServer, ruleId: string, query = '', key?: string): Promise<Page> {
  const res = await s.request<Page>('GET', `/v1/alert-rules/${ruleId}/history${query}`, { key });
  expect(res.status, res.text).toBe(200);
  return res.body;
}

const moves = (page: Page) => page.data.map((t) => `${t.from_state}->${t.to_state}`);

async function createRule(s: TestServer, overrides: Record<string, unknown>, key?: string): Promise<string> {
  const res = await s.request('POST', '/v1/alert-rules', { body: ruleBody(overrides), key });
  expect(res.status, res.text).toBe(201);
  return res.body.id as string;
}

async function patchRule(s: TestServer, id: string, body: Record<string, unknown>, key?: string): Promise<Record<string, any>> {
  const res = await s.request('PATCH', `/v1/alert-rules/${id}`, { body, key });
  expect(res.status, res.text).toBe(200);
  return res.body;
}

async function sendCalls(s: TestServer, n: number, key?: string): Promise<void> {
  const events = Array.from({ length: n }, () => ({ type: 'call', project_id: 'proj_abc123' }));
  const res = await s.request('POST', '/v1/telemetry/events', { body: { events }, key });
  expect(res.status, res.text).toBe(202);
}

/**
 * A call_volume >= 1 rule with one call in its window: each threshold change flips it
 * between alert (threshold 1) and ok (threshold 2), one transition per PATCH.
 */
async function flippingRule(s: TestServer, key?: string): Promise<{ id: string; flip(): Promise<void> }> {
  const id = await createRule(s, { name: 'calls', metric: 'call_volume', operator: '>=', threshold_value: 2 }, key);
  await sendCalls(s, 1, key);
  let threshold = 2;
  return {
    id,
    async flip() {
      threshold = threshold === 2 ? 1 : 2;
      await patchRule(s, id, { threshold_value: threshold }, key);
    },
  };
}

describe('the history of a rule', () => {
  it('lists every transition newest first, with the event id stored in alert_events and delivered by webhook; silent ones have a null event', async () => {
    const clock = testClock(START);
    const s = await server(clock);
    const receiver = await startHttpsReceiver({ host: '127.0.0.1' });
    cleanups.push(() => receiver.close());
    await createEndpoint(s, { url: receiver.url });

    const rule = await createErrorRule(s); // unknown -> no_data at once
    clock.advance(SECOND);
    await sendApiError(s); // no_data -> alert: alerts.triggered
    await resolveAlerts(s, clock); // 5 minutes on: alert -> ok, alerts.resolved
    clock.advance(DAY); // a day without telemetry: ok -> no_data, which sends nothing
    await s.service.engine.tick();
    await s.service.deliveryWorker.drain();

    const page = await historyPage(s, rule.id);
    expect(page.next_cursor).toBeNull();
    expect(moves(page)).toEqual(['ok->no_data', 'alert->ok', 'no_data->alert', 'unknown->no_data']);
    expect(page.data.map((t) => t.event_type)).toEqual([null, 'alerts.resolved', 'alerts.triggered', null]);
    expect(page.data.map((t) => t.at)).toEqual([iso(START + SECOND + 5 * MINUTE + DAY), iso(START + SECOND + 5 * MINUTE), iso(START + SECOND), iso(START)]);
    expect(page.data.map((t) => t.value)).toEqual([null, 0, 1, null]);
    for (const t of page.data) expect(t).toMatchObject({ threshold_value: 1, operator: '>=', window_duration: '5m' });
    expect(page.data[0]!.event_id).toBeNull();
    expect(page.data[3]!.event_id).toBeNull();
    // No silence held anything back.
    expect(page.data.map((t) => t.silence_id)).toEqual([null, null, null, null]);

    // The same ids as the outbox and as the X-PolyAI-Event-ID of the webhooks received.
    const events = await s.service.store.alertEvents.list();
    const eventIds = [page.data[2]!.event_id, page.data[1]!.event_id];
    expect(events.map((e) => e.id)).toEqual(eventIds);
    expect(events.map((e) => e.event_type)).toEqual(['alerts.triggered', 'alerts.resolved']);
    // One drain sends both at once: they may arrive in either order.
    expect(receiver.requests.map((r) => r.headers['x-polyai-event-id']).sort()).toEqual([...eventIds].sort());
  });

  it('keeps the threshold, operator and window the rule had at each transition: an update shows on later rows only', async () => {
    const s = await server();
    const id = await createRule(s, { name: 'calls', metric: 'call_volume', operator: '>', threshold_value: 5, window_duration: '5m' });
    await sendCalls(s, 3); // no_data -> ok, value 3
    await patchRule(s, id, { threshold_value: 2 }); // 3 > 2: ok -> alert
    await patchRule(s, id, { operator: '<', window_duration: '10m' }); // 3 < 2 is false: alert -> ok

    const page = await historyPage(s, id);
    expect(page.data.map(({ from_state, to_state, value, threshold_value, operator, window_duration, event_type }) => ({
      move: `${from_state}->${to_state}`,
      value,
      threshold_value,
      operator,
      window_duration,
      event_type,
    }))).toEqual([
      { move: 'alert->ok', value: 3, threshold_value: 2, operator: '<', window_duration: '10m', event_type: 'alerts.resolved' },
      { move: 'ok->alert', value: 3, threshold_value: 2, operator: '>', window_duration: '5m', event_type: 'alerts.triggered' },
      { move: 'no_data->ok', value: 3, threshold_value: 5, operator: '>', window_duration: '5m', event_type: null },
      { move: 'unknown->no_data', value: null, threshold_value: 5, operator: '>', window_duration: '5m', event_type: null },
    ]);
  });

  it('records disabling (to unknown, no event) and enabling, but nothing for an update or evaluation that keeps the state', async () => {
    const clock = testClock(START);
    const s = await server(clock);
    const id = await createRule(s, { name: 'calls', metric: 'call_volume', operator: '>', threshold_value: 5 });
    await sendCalls(s, 1); // no_data -> ok
    await patchRule(s, id, { name: 'renamed' }); // evaluated again, still ok
    await sendCalls(s, 1); // value 2, still ok
    clock.advance(SECOND);
    await s.service.engine.tick();
    expect(moves(await historyPage(s, id))).toEqual(['no_data->ok', 'unknown->no_data']);

    clock.advance(SECOND);
    await patchRule(s, id, { enabled: false });
    await patchRule(s, id, { name: 'renamed again' }); // disabled and unknown already: no transition
    clock.advance(SECOND);
    await patchRule(s, id, { enabled: true });
    const page = await historyPage(s, id);
    expect(moves(page)).toEqual(['unknown->ok', 'ok->unknown', 'no_data->ok', 'unknown->no_data']);
    expect(page.data[1]).toMatchObject({ event_id: null, event_type: null, value: null, at: iso(START + 2 * SECOND) });
    expect(page.data[0]).toMatchObject({ value: 2, at: iso(START + 3 * SECOND) });
  });

  it('pages with limit and cursor, and neither repeats nor skips a transition when new ones are written between pages', async () => {
    const s = await server();
    const rule = await flippingRule(s); // unknown -> no_data, no_data -> ok
    for (let i = 0; i < 5; i++) await rule.flip();
    const all = (await historyPage(s, rule.id)).data;
    expect(all).toHaveLength(7);

    const first = await historyPage(s, rule.id, '?limit=3');
    expect(first.data).toEqual(all.slice(0, 3));
    expect(first.next_cursor).toEqual(expect.any(String));
    // Written while the client pages: they belong before the first page, not in the next ones.
    await rule.flip();
    await rule.flip();
    const second = await historyPage(s, rule.id, `?limit=3&cursor=${first.next_cursor}`);
    expect(second.data).toEqual(all.slice(3, 6));
    await rule.flip();
    const third = await historyPage(s, rule.id, `?limit=3&cursor=${second.next_cursor}`);
    expect(third.data).toEqual(all.slice(6));
    expect(third.next_cursor).toBeNull();

    const fresh = await historyPage(s, rule.id, '?limit=200');
    expect(fresh.data).toHaveLength(10);
    expect(fresh.data.slice(3)).toEqual(all);
    expect(fresh.next_cursor).toBeNull();
    // A full last page still says null: no empty page to fetch.
    expect((await historyPage(s, rule.id, '?limit=10')).next_cursor).toBeNull();
    expect((await historyPage(s, rule.id, '?limit=9')).next_cursor).toEqual(expect.any(String));
  });

  it('returns 50 transitions by default and refuses a limit outside 1 to 200 with a 400 naming it', async () => {
    const s = await server();
    const rule = await flippingRule(s);
    for (let i = 0; i < 50; i++) await rule.flip();
    const page = await historyPage(s, rule.id);
    expect(page.data).toHaveLength(50);
    const rest = await historyPage(s, rule.id, `?cursor=${page.next_cursor}`);
    expect(rest.data).toHaveLength(2);
    expect(rest.next_cursor).toBeNull();

    for (const limit of ['0', '201', 'ten']) {
      const res = await s.request('GET', `/v1/alert-rules/${rule.id}/history?limit=${limit}`);
      expect(res.status, limit).toBe(400);
      expect(res.body.message).toMatch(/limit/);
      expect(res.body.errors).toEqual([expect.objectContaining({ field: expect.stringMatching(/limit/) })]);
    }
  });

  it('answers a cursor it did not make with 400 naming `cursor`', async () => {
    const s = await server();
    const rule = await flippingRule(s);
    const valid = Buffer.from('5').toString('base64url');
    expect((await s.request('GET', `/v1/alert-rules/${rule.id}/history?cursor=${valid}`)).status).toBe(200);
    const malformed = ['not a cursor!', Buffer.from('abc').toString('base64url'), Buffer.from('0').toString('base64url'), Buffer.from('-3').toString('base64url'), 'x'.repeat(65), ''];
    for (const cursor of malformed) {
      const res = await s.request('GET', `/v1/alert-rules/${rule.id}/history?cursor=${encodeURIComponent(cursor)}`);
      expect(res.status, cursor).toBe(400);
      expect(res.body.message, cursor).toMatch(/cursor/);
      expect(res.body.errors, cursor).toEqual([expect.objectContaining({ field: expect.stringMatching(/cursor/) })]);
    }
  });

  it("keeps accounts apart: another account's rule is a 404, and each sees only its own transitions", async () => {
    const s = await server();
    const globex = await s.newKey('globex');
    const ours = await flippingRule(s);
    const theirs = await flippingRule(s, globex);
    await theirs.flip();

    const res = await s.request('GET', `/v1/alert-rules/${ours.id}/history`, { key: globex });
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ message: expect.stringContaining(ours.id) });
    expect((await s.request('GET', `/v1/alert-rules/${theirs.id}/history`)).status).toBe(404);
    expect(moves(await historyPage(s, ours.id))).toEqual(['no_data->ok', 'unknown->no_data']);
    expect(moves(await historyPage(s, theirs.id, '', globex))).toEqual(['ok->alert', 'no_data->ok', 'unknown->no_data']);

    // The rest of the error shapes: no key, a malformed id, a rule that does not exist.
    expect((await s.request('GET', `/v1/alert-rules/${ours.id}/history`, { key: null })).status).toBe(401);
    const malformed = await s.request('GET', '/v1/alert-rules/not-a-rule/history');
    expect(malformed.status).toBe(422);
    expect(malformed.body.message).toEqual(expect.any(String));
    expect((await s.request('GET', '/v1/alert-rules/ar_doesnotexist/history')).status).toBe(404);
  });

  it('is deleted with the rule', async () => {
    const s = await server();
    const deleted = await flippingRule(s);
    const kept = await flippingRule(s);
    await deleted.flip();
    expect((await s.request('DELETE', `/v1/alert-rules/${deleted.id}`)).status).toBe(204);

    expect((await s.request('GET', `/v1/alert-rules/${deleted.id}/history`)).status).toBe(404);
    const rows = await s.service.store.db.selectFrom('alert_rule_history').select('rule_id').execute();
    expect(rows.map((r) => r.rule_id)).toEqual([kept.id, kept.id]);
  });

  it('is pruned once older than ALERTS_HISTORY_RETENTION (30 days), whatever the event retention', async () => {
    const clock = testClock(START);
    const s = await server(clock, { ALERTS_EVENT_RETENTION: 'off' });
    const rule = await flippingRule(s);
    await rule.flip(); // ok -> alert, with an event
    clock.set(START + 20 * DAY);
    await sendCalls(s, 1);
    await rule.flip(); // alert -> ok, 20 days later

    clock.set(START + 30 * DAY - MINUTE);
    expect(await s.service.retention.pruneNow()).toEqual({ deliveries: 0, attempts: 0, events: 0, history: 0, silences: 0 });
    clock.set(START + 30 * DAY + MINUTE);
    expect(await s.service.retention.pruneNow()).toEqual({ deliveries: 0, attempts: 0, events: 0, history: 3, silences: 0 });
    const page = await historyPage(s, rule.id);
    expect(moves(page)).toEqual(['alert->ok']);
    expect(page.data[0]!.at).toBe(iso(START + 20 * DAY));
    // Events have a retention of their own (off here): the first alert's event is still there.
    expect(await s.service.store.alertEvents.list()).toHaveLength(2);
  });

  it('honours a shorter ALERTS_HISTORY_RETENTION, and keeps everything with off', async () => {
    const clock = testClock(START);
    const short = await server(clock, { ALERTS_HISTORY_RETENTION: '2d' });
    const kept = await server(clock, { ALERTS_HISTORY_RETENTION: 'off', ALERTS_EVENT_RETENTION: 'off' });
    const shortRule = await flippingRule(short);
    const keptRule = await flippingRule(kept);
    clock.set(START + 2 * DAY + MINUTE);
    expect((await short.service.retention.pruneNow()).history).toBe(2);
    expect((await historyPage(short, shortRule.id)).data).toEqual([]);
    clock.set(START + 3650 * DAY);
    expect((await kept.service.retention.pruneNow()).history).toBe(0);
    expect((await historyPage(kept, keptRule.id)).data).toHaveLength(2);
  });
});

describe('the history operation in /openapi.json', () => {
  it('is documented as ours, with limit and cursor, the page shape and the usual error statuses', async () => {
    const s = await server();
    const doc = (await s.request('GET', '/openapi.json', { key: null })).body;
    const operation = doc.paths['/v1/alert-rules/{rule_id}/history'].get;
    expect(operation.operationId).toBe('listAlertRuleHistory');
    expect(operation.description).toMatch(/Not part of the PolyAI contract/);
    expect(operation.security).toBeUndefined(); // the document-wide x-api-key requirement applies
    const parameters = Object.fromEntries((operation.parameters as { name: string; in: string; schema: any }[]).map((p) => [`${p.in}:${p.name}`, p.schema]));
    expect(parameters['path:rule_id']).toMatchObject({ type: 'string', pattern: '^ar_[A-Za-z0-9]+$' });
    expect(parameters['query:limit']).toMatchObject({ type: 'integer', minimum: 1, maximum: 200, default: 50 });
    expect(parameters['query:cursor']).toMatchObject({ type: 'string' });
    expect(Object.keys(operation.responses).sort()).toEqual(['200', '400', '401', '404', '422', '500']);
    const page = operation.responses['200'].content['application/json'].schema;
    expect(page.required.sort()).toEqual(['data', 'next_cursor']);
    expect(page.properties.data.items.required.sort()).toEqual(
      ['at', 'event_id', 'event_type', 'from_state', 'operator', 'silence_id', 'threshold_value', 'to_state', 'value', 'window_duration'],
    );
    expect(operation.responses['404'].content['application/json'].schema.required).toEqual(['message']);
  });
});

describe('the history after kill -9 of alerts serve', () => {
  const apiKey = 'bootstrap_' + randomBytes(24).toString('hex');
  afterEach(async () => {
    await killAllChildren();
  });

  async function call(s: CliServer, method: string, path: string, body?: unknown) {
    const res = await fetch(s.baseUrl + path, {
      method,
      headers: { 'x-api-key': apiKey, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text === '' ? undefined : JSON.parse(text), text };
  }

  it('keeps every transition committed before the kill, with its event id', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'alerts-history-'));
    cleanups.push(async () => {
      rmSync(dir, { recursive: true, force: true });
      await dropDatabaseFor(dir);
    });
    const dbUrl = await databaseUrlFor(dir);
    const serve = () =>
      startCliServer({
        cwd: dir,
        env: { DATABASE_URL: dbUrl, ALERTS_BOOTSTRAP_API_KEY: apiKey, ALERTS_EVALUATION_INTERVAL_MS: '200', ALERTS_DELIVERY_WORKER: 'off', LOG_LEVEL: 'warn' },
      });

    const first = await serve();
    const created = await call(first, 'POST', '/v1/alert-rules', { name: 'API errors', metric: 'api_errors', operator: '>=', threshold_value: 2, window_duration: '60m' });
    expect(created.status, created.text).toBe(201);
    const id = created.body.id as string;
    const sent = await call(first, 'POST', '/v1/telemetry/events', { events: [{ type: 'api_error' }, { type: 'api_error' }] });
    expect(sent.status, sent.text).toBe(202);
    // The 202 comes once the rule is evaluated and its transition committed: kill at once.
    const exit = await first.stop('SIGKILL');
    expect(exit.signal).toBe('SIGKILL');

    const db = inspectDatabase(dbUrl);
    const onDisk = await db
      .selectFrom('alert_rule_history')
      .select(['from_state', 'to_state', 'event_id', 'event_type'])
      .where('rule_id', '=', id)
      .orderBy('seq')
      .execute()
      .finally(() => db.destroy());
    expect(onDisk.map((r) => `${r.from_state}->${r.to_state}`)).toEqual(['unknown->no_data', 'no_data->alert']);

    const second = await serve();
    const page = await call(second, 'GET', `/v1/alert-rules/${id}/history`);
    expect(page.status, page.text).toBe(200);
    expect(page.body.data.map((t: Transition) => `${t.from_state}->${t.to_state}`)).toEqual(['no_data->alert', 'unknown->no_data']);
    expect(page.body.data[0]).toMatchObject({ event_id: onDisk[1]!.event_id, event_type: 'alerts.triggered', value: 2, threshold_value: 2 });
    // Still firing after the restart: the same firing, no second transition.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await call(second, 'GET', `/v1/alert-rules/${id}/history`)).body.data).toHaveLength(2);
    expect((await second.stop()).code).toBe(0);
  });
});
