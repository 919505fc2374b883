import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_SILENCES_PER_ACCOUNT } from '../src/domain/silences.js';
import { dropDatabaseFor, onPostgres } from './helpers/database.js';
import { startHttpsReceiver, type HttpsReceiver } from './helpers/https-receiver.js';
import { snapshotDatabase, startTestServer, testClock, type TestServer } from './helpers/server.js';
import { createEndpoint, createErrorRule, eventually, PROJECT, sendApiError } from './helpers/webhook-fixtures.js';

/**
 * Silences (ours, /v1/silences): while one matches a rule, the rule evaluates and changes
 * state as usual, its history records each transition with the silence's id, its events are
 * written to the outbox, but no webhook delivery is made for them. Decided in the transaction
 * that writes the event, from the silences stored then. Fresh database per test; the clock is
 * injected and the engine is ticked by hand.
 */

const START = Date.parse('2026-03-15T10:30:00.000Z');
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const DAY = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString();
const ALLOW_RECEIVERS = { ALERTS_WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32' };

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function server(clock = testClock(START), options: { env?: Record<string, string>; dir?: string } = {}): Promise<TestServer> {
  const s = await startTestServer({ clock, dir: options.dir, env: { ...ALLOW_RECEIVERS, ...options.env } });
  cleanups.push(() => s.close());
  return s;
}

async function receiver(): Promise<HttpsReceiver> {
  const r = await startHttpsReceiver({ host: '127.0.0.1' });
  cleanups.push(() => r.close());
  return r;
}

/** A silence body that is valid at START: project proj_abc123 for an hour. */
function silenceBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { project_id: PROJECT, ends_at: iso(START + 60 * MINUTE), comment: 'maintenance window', ...overrides };
}

async function createSilence(s: TestServer, overrides: Record<string, unknown> = {}, key?: string): Promise<Record<string, any> & { id: string }> {
  const res = await s.request('POST', '/v1/silences', { body: silenceBody(overrides), key });
  expect(res.status, res.text).toBe(201);
  return res.body;
}

async function getRule(s: TestServer, id: string): Promise<Record<string, any>> {
  const res = await s.request('GET', `/v1/alert-rules/${id}`);
  expect(res.status, res.text).toBe(200);
  return res.body;
}

async function historyOf(s: TestServer, ruleId: string): Promise<Record<string, any>[]> {
  const res = await s.request('GET', `/v1/alert-rules/${ruleId}/history`);
  expect(res.status, res.text).toBe(200);
  return res.body.data;
}

/** Every event in the outbox, oldest first, with whether it has any delivery. */
async function outbox(s: TestServer): Promise<{ id: string; rule_id: string; event_type: string; delivered: boolean }[]> {
  const events = await s.service.store.alertEvents.list();
  const deliveries = await s.service.store.db.selectFrom('webhook_deliveries').select('event_id').execute();
  const withDelivery = new Set(deliveries.map((d) => d.event_id));
  return events.map((e) => ({ id: e.id, rule_id: e.rule_id, event_type: e.event_type, delivered: withDelivery.has(e.id) }));
}

/** What the receiver got: `<rule id> <event type>` per webhook, after the worker sent everything due. */
async function received(s: TestServer, r: HttpsReceiver): Promise<string[]> {
  await s.service.deliveryWorker.drain();
  return r.requests.map((request) => {
    const body = JSON.parse(request.body.toString('utf8'));
    return `${body.alert.id} ${body.event_type}`;
  });
}

async function send(s: TestServer, events: Record<string, unknown>[], key?: string): Promise<void> {
  const res = await s.request('POST', '/v1/telemetry/events', { body: { events }, key });
  expect(res.status, res.text).toBe(202);
}

const SILENCE_KEYS = ['active', 'comment', 'created_at', 'ends_at', 'id', 'metric', 'project_id', 'rule_id', 'starts_at'];

describe('the silences API', () => {
  it('creates a silence (201, sil_ id, starting now), shows it by id and lists silences newest first; ?active filters on now', async () => {
    const clock = testClock(START);
    const s = await server(clock);
    const now = await createSilence(s);
    expect(now.id).toMatch(/^sil_[A-Za-z0-9]{22}$/);
    expect(Object.keys(now).sort()).toEqual(SILENCE_KEYS);
    expect(now).toEqual({
      id: now.id,
      rule_id: null,
      project_id: PROJECT,
      metric: null,
      starts_at: iso(START),
      ends_at: iso(START + 60 * MINUTE),
      comment: 'maintenance window',
      created_at: iso(START),
      active: true,
    });
    clock.advance(SECOND);
    // Times are taken as RFC 3339 with any offset and kept in UTC with milliseconds.
    const later = await createSilence(s, { metric: 'api_errors', project_id: undefined, starts_at: '2026-03-15T14:00:00+02:00', ends_at: '2026-03-15T13:00:00.5Z' });
    expect(later).toMatchObject({ project_id: null, metric: 'api_errors', starts_at: '2026-03-15T12:00:00.000Z', ends_at: '2026-03-15T13:00:00.500Z', active: false });

    const got = await s.request('GET', `/v1/silences/${now.id}`);
    expect(got.status).toBe(200);
    expect(got.body).toEqual(now);
    const list = await s.request('GET', '/v1/silences');
    expect(list.status).toBe(200);
    expect(list.body).toEqual({ data: [later, now], next_cursor: null });
    expect((await s.request('GET', '/v1/silences?active=true')).body.data.map((x: any) => x.id)).toEqual([now.id]);
    expect((await s.request('GET', '/v1/silences?active=false')).body.data.map((x: any) => x.id)).toEqual([later.id]);
    clock.set(Date.parse('2026-03-15T12:00:00.000Z'));
    expect((await s.request('GET', '/v1/silences?active=true')).body.data.map((x: any) => x.id)).toEqual([later.id]);
  });

  const badBodies: [string, Record<string, unknown>, string, RegExp][] = [
    ['no matcher at all', { project_id: undefined }, '(body)', /at least one of rule_id, project_id and metric/],
    ['a malformed rule_id', { rule_id: 'rule-1' }, 'rule_id', /must match/],
    ['a rule_id that is no rule', { rule_id: 'ar_0000000000000000000000' }, 'rule_id', /not an alert rule of this account/],
    ['an empty project_id', { project_id: '' }, 'project_id', /fewer than 1/],
    ['a project_id of 256 characters', { project_id: 'p'.repeat(256) }, 'project_id', /more than 255/],
    ['a null project_id', { project_id: null }, 'project_id', /string/],
    ['an unknown metric', { metric: 'cpu_usage' }, 'metric', /must be one of "turn_latency_p50"/],
    ['a starts_at that is not RFC 3339', { starts_at: 'yesterday' }, 'starts_at', /RFC 3339/],
    ['a missing ends_at', { ends_at: undefined }, 'ends_at', /required/],
    ['an ends_at that is not RFC 3339', { ends_at: '2026-03-15 12:00' }, 'ends_at', /RFC 3339/],
    ['an ends_at in the past', { ends_at: iso(START - 1) }, 'ends_at', /in the future/],
    ['an ends_at at now', { ends_at: iso(START) }, 'ends_at', /in the future/],
    ['an ends_at at starts_at', { starts_at: iso(START + MINUTE), ends_at: iso(START + MINUTE) }, 'ends_at', /after starts_at/],
    ['an ends_at more than 90 days ahead', { ends_at: iso(START + 90 * DAY + 1) }, 'ends_at', /at most 90 days from now/],
    ['a missing comment', { comment: undefined }, 'comment', /required/],
    ['an empty comment', { comment: '' }, 'comment', /fewer than 1/],
    ['a comment of 501 characters', { comment: 'c'.repeat(501) }, 'comment', /more than 500/],
    ['a comment as a number', { comment: 42 }, 'comment', /string/],
    ['an unknown field', { severity: 'high' }, 'severity', /is not a known field/],
    ['a read-only field (active)', { active: false }, 'active', /is not a known field/],
  ];

  it.each(badBodies)('answers 400 for %s, naming the field and storing nothing', async (_what, overrides, field, message) => {
    const s = await server();
    const before = await snapshotDatabase(s.service);
    const res = await s.request('POST', '/v1/silences', { body: silenceBody(overrides) });
    expect(res.status, res.text).toBe(400);
    expect(res.body.errors, res.text).toContainEqual({ field, message: expect.stringMatching(message) });
    expect(res.body.message).toMatch(field === '(body)' ? message : new RegExp(field.replace(/[()]/g, '\\$&')));
    expect(await snapshotDatabase(s.service)).toEqual(before);
  });

  it('accepts the edges: an ends_at exactly 90 days ahead, a 500-character comment, a starts_at in the past, all three matchers', async () => {
    const s = await server();
    const rule = await createErrorRule(s);
    const silence = await createSilence(s, {
      rule_id: rule.id,
      metric: 'api_errors',
      starts_at: iso(START - DAY),
      ends_at: iso(START + 90 * DAY),
      comment: 'c'.repeat(500),
    });
    expect(silence).toMatchObject({ rule_id: rule.id, project_id: PROJECT, metric: 'api_errors', starts_at: iso(START - DAY), active: true });
  });

  it("keeps accounts apart: another account's silence and rule are 404 and 400, and lists show only the account's own", async () => {
    const s = await server();
    const otherKey = await s.newKey('globex');
    const theirRule = await createErrorRule(s, {}, otherKey);
    const theirs = await createSilence(s, {}, otherKey);
    const mine = await createSilence(s);
    expect((await s.request('GET', `/v1/silences/${theirs.id}`)).status).toBe(404);
    const before = await snapshotDatabase(s.service);
    const deleted = await s.request('DELETE', `/v1/silences/${theirs.id}`);
    expect(deleted.status).toBe(404);
    expect(deleted.body).toEqual({ message: `silence ${theirs.id} not found` });
    expect(await snapshotDatabase(s.service)).toEqual(before);
    const foreignRule = await s.request('POST', '/v1/silences', { body: silenceBody({ rule_id: theirRule.id }) });
    expect(foreignRule.status).toBe(400);
    expect(foreignRule.body.errors).toEqual([{ field: 'rule_id', message: `is not an alert rule of this account (${theirRule.id})` }]);
    expect((await s.request('GET', '/v1/silences')).body.data.map((x: any) => x.id)).toEqual([mine.id]);
    expect((await s.request('GET', '/v1/silences', { key: otherKey })).body.data.map((x: any) => x.id)).toEqual([theirs.id]);
    // The other account's silence of the same project silences nothing of this account.
    const rule = await createErrorRule(s);
    expect(await getRule(s, rule.id)).toMatchObject({ silenced: true });
    await s.request('DELETE', `/v1/silences/${mine.id}`);
    expect(await getRule(s, rule.id)).toMatchObject({ silenced: false, silenced_until: null });
  });

  it('answers 422 for a malformed silence ID and 404 for a well-formed one that does not exist', async () => {
    const s = await server();
    for (const path of ['/v1/silences/bad', '/v1/silences/sil_', '/v1/silences/ar_0000000000000000000000', '/v1/silences/sil_a-b']) {
      expect((await s.request('GET', path)).status, path).toBe(422);
      expect((await s.request('DELETE', path)).status, path).toBe(422);
    }
    const missing = await s.request('GET', '/v1/silences/sil_0000000000000000000000');
    expect(missing.status).toBe(404);
    expect(missing.body.message).toBe('silence sil_0000000000000000000000 not found');
  });

  it(`holds at most ${MAX_SILENCES_PER_ACCOUNT} silences that have not ended (409 beyond, nothing stored); ended ones do not count`, async () => {
    const clock = testClock(START);
    const s = await server(clock);
    const ids: string[] = [];
    // Half of them start later: a silence to come counts as well.
    for (let i = 0; i < MAX_SILENCES_PER_ACCOUNT; i++) ids.push((await createSilence(s, i % 2 === 0 ? {} : { starts_at: iso(START + 30 * MINUTE) })).id);
    const before = await snapshotDatabase(s.service);
    const refused = await s.request('POST', '/v1/silences', { body: silenceBody() });
    expect(refused.status).toBe(409);
    expect(refused.body.message).toMatch(/at most 100 silences that have not ended/);
    expect(await snapshotDatabase(s.service)).toEqual(before);
    // Another account has its own allowance.
    await createSilence(s, {}, await s.newKey('globex'));
    // Ending one makes room, and it stays listed.
    expect((await s.request('DELETE', `/v1/silences/${ids[0]}`)).status).toBe(204);
    await createSilence(s);
    expect((await s.request('POST', '/v1/silences', { body: silenceBody() })).status).toBe(409);
    // Once the hour is over, all of them have ended.
    clock.set(START + 60 * MINUTE);
    await createSilence(s, { ends_at: iso(START + 2 * 60 * MINUTE) });
  });

  it('pages with limit and cursor, newest first, and refuses a cursor it did not make or a limit outside 1 to 200', async () => {
    const clock = testClock(START);
    const s = await server(clock);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.unshift((await createSilence(s, { comment: `silence ${i}` })).id);
      clock.advance(SECOND);
    }
    const first = await s.request('GET', '/v1/silences?limit=2');
    expect(first.body.data.map((x: any) => x.id)).toEqual(ids.slice(0, 2));
    const second = await s.request('GET', `/v1/silences?limit=2&cursor=${first.body.next_cursor}`);
    expect(second.body.data.map((x: any) => x.id)).toEqual(ids.slice(2, 4));
    const last = await s.request('GET', `/v1/silences?limit=2&cursor=${second.body.next_cursor}`);
    expect(last.body).toMatchObject({ next_cursor: null });
    expect(last.body.data.map((x: any) => x.id)).toEqual(ids.slice(4));
    for (const [query, field] of [
      ['cursor=nope', 'cursor'],
      ['limit=0', 'limit'],
      ['limit=201', 'limit'],
      ['active=maybe', 'active'],
    ] as const) {
      const res = await s.request('GET', `/v1/silences?${query}`);
      expect(res.status, query).toBe(400);
      expect(res.body.errors.map((e: any) => e.field), query).toContain(field);
    }
  });

  it('ends a silence on DELETE (204): it stays, with ends_at the time it was ended; again changes nothing; one not started never applies', async () => {
    const clock = testClock(START);
    const s = await server(clock);
    const running = await createSilence(s);
    const later = await createSilence(s, { starts_at: iso(START + 30 * MINUTE) });
    clock.advance(5 * MINUTE);
    const res = await s.request('DELETE', `/v1/silences/${running.id}`);
    expect(res.status).toBe(204);
    expect(res.text).toBe('');
    expect((await s.request('GET', `/v1/silences/${running.id}`)).body).toEqual({ ...running, ends_at: iso(START + 5 * MINUTE), active: false });
    clock.advance(MINUTE);
    expect((await s.request('DELETE', `/v1/silences/${running.id}`)).status).toBe(204);
    expect((await s.request('GET', `/v1/silences/${running.id}`)).body.ends_at).toBe(iso(START + 5 * MINUTE));
    expect((await s.request('DELETE', `/v1/silences/${later.id}`)).status).toBe(204);
    expect((await s.request('GET', `/v1/silences/${later.id}`)).body).toMatchObject({ starts_at: iso(START + 6 * MINUTE), ends_at: iso(START + 6 * MINUTE), active: false });
    clock.set(START + 40 * MINUTE);
    expect((await s.request('GET', '/v1/silences?active=true')).body.data).toEqual([]);
  });

  it('keeps ended silences for ALERTS_HISTORY_RETENTION after they end, then prunes them; never one that has not ended', async () => {
    const clock = testClock(START);
    const s = await server(clock);
    const ended = await createSilence(s, { ends_at: iso(START + MINUTE) });
    const long = await createSilence(s, { ends_at: iso(START + 60 * DAY) });
    clock.set(START + MINUTE + 30 * DAY);
    expect((await s.service.retention.pruneNow()).silences).toBe(0);
    clock.set(START + MINUTE + 30 * DAY + 1);
    expect((await s.service.retention.pruneNow()).silences).toBe(1);
    expect((await s.request('GET', `/v1/silences/${ended.id}`)).status).toBe(404);
    expect((await s.request('GET', '/v1/silences')).body.data.map((x: any) => x.id)).toEqual([long.id]);
  });
});

describe('a silenced rule', () => {
  it('fires as usual (alert, history with silence_id, event in the outbox) but gets no delivery, and nothing reaches the receiver', async () => {
    const clock = testClock(START);
    const s = await server(clock);
    const r = await receiver();
    await createEndpoint(s, { url: r.url });
    const rule = await createErrorRule(s);
    expect(await getRule(s, rule.id)).toMatchObject({ silenced: false, silenced_until: null });
    const silence = await createSilence(s, { rule_id: rule.id, comment: 'deploying' });
    expect(await getRule(s, rule.id)).toMatchObject({ silenced: true, silenced_until: iso(START + 60 * MINUTE) });
    const listed = (await s.request('GET', '/v1/alert-rules')).body.data;
    expect(listed).toEqual([expect.objectContaining({ id: rule.id, silenced: true, silenced_until: iso(START + 60 * MINUTE) })]);

    clock.advance(SECOND);
    await sendApiError(s);
    expect(await getRule(s, rule.id)).toMatchObject({ current_state: 'alert', silenced: true });
    // Still an active alert: the silence only holds the webhooks back.
    expect((await s.request('GET', '/v1/alerts')).body.data.map((a: any) => a.alert_rule_id)).toEqual([rule.id]);
    const [fired] = await historyOf(s, rule.id);
    expect(fired).toMatchObject({ from_state: 'no_data', to_state: 'alert', event_type: 'alerts.triggered', silence_id: silence.id });
    expect(await outbox(s)).toEqual([{ id: fired!.event_id, rule_id: rule.id, event_type: 'alerts.triggered', delivered: false }]);
    expect(await received(s, r)).toEqual([]);
    expect(r.connections).toBe(0);
    // The transition that sent nothing (unknown -> no_data) names no silence either.
    expect((await historyOf(s, rule.id)).map((t) => t.silence_id)).toEqual([silence.id, null]);
  });

  // Rules: A (proj_abc123, api_errors), B (proj_other, api_errors), C (proj_abc123,
  // function_errors), D (the whole account, api_errors); all fire on one error.
  const matcherCases: [string, (ids: Record<string, string>) => Record<string, unknown>, string[]][] = [
    ['rule_id only', (ids) => ({ rule_id: ids.A }), ['A']],
    ['project_id only', () => ({ project_id: 'proj_abc123' }), ['A', 'C']],
    ['metric only', () => ({ metric: 'api_errors' }), ['A', 'B', 'D']],
    ['project_id and metric', () => ({ project_id: 'proj_abc123', metric: 'api_errors' }), ['A']],
    ['rule_id and metric', (ids) => ({ rule_id: ids.C, metric: 'function_errors' }), ['C']],
    ['rule_id and a project that is not the rule’s', (ids) => ({ rule_id: ids.A, project_id: 'proj_other' }), []],
    ['a project no rule has', () => ({ project_id: 'proj_none' }), []],
  ];

  it.each(matcherCases)('matches on %s (all matchers given must match); the rules it does not match still deliver', async (_what, matchers, silenced) => {
    const clock = testClock(START);
    const s = await server(clock);
    const r = await receiver();
    await createEndpoint(s, { url: r.url });
    const ids: Record<string, string> = {
      A: (await createErrorRule(s, { name: 'A' })).id,
      B: (await createErrorRule(s, { name: 'B', project_id: 'proj_other' })).id,
      C: (await createErrorRule(s, { name: 'C', metric: 'function_errors' })).id,
      D: (await createErrorRule(s, { name: 'D', project_id: null })).id,
    };
    const names = Object.fromEntries(Object.entries(ids).map(([name, id]) => [id, name]));
    const silence = await createSilence(s, { project_id: undefined, ...matchers(ids) });
    const rules = (await s.request('GET', '/v1/alert-rules')).body.data as Record<string, any>[];
    expect(rules.filter((rule) => rule.silenced).map((rule) => rule.name)).toEqual(silenced);

    clock.advance(SECOND);
    await send(s, [
      { type: 'api_error', project_id: 'proj_abc123' },
      { type: 'api_error', project_id: 'proj_other' },
      { type: 'function_error', project_id: 'proj_abc123' },
    ]);
    const events = await outbox(s);
    expect(events.map((e) => names[e.rule_id]).sort()).toEqual(['A', 'B', 'C', 'D']);
    expect(events.filter((e) => !e.delivered).map((e) => names[e.rule_id]).sort()).toEqual(silenced);
    const notSilenced = ['A', 'B', 'C', 'D'].filter((name) => !silenced.includes(name));
    expect((await received(s, r)).map((line) => names[line.split(' ')[0]!]).sort()).toEqual(notSilenced);
    for (const [name, id] of Object.entries(ids)) {
      const [fired] = await historyOf(s, id);
      expect(fired, name).toMatchObject({ to_state: 'alert', event_type: 'alerts.triggered', silence_id: silenced.includes(name) ? silence.id : null });
    }
  });

  it('applies from starts_at (included) to ends_at (excluded): nothing replayed when it ends on a firing rule, and its resolution is sent', async () => {
    const clock = testClock(START);
    const s = await server(clock);
    const r = await receiver();
    await createEndpoint(s, { url: r.url });
    const rule = await createErrorRule(s);
    const at = (minutes: number) => START + minutes * MINUTE;
    const silence = await createSilence(s, { starts_at: iso(at(11)), ends_at: iso(at(22)) });
    const moves = async () => (await historyOf(s, rule.id)).reverse().map((t) => `${t.to_state}${t.silence_id === null ? '' : ' (silenced)'}`);

    // Before it starts: delivered both ways.
    expect(await getRule(s, rule.id)).toMatchObject({ silenced: false });
    clock.set(at(0) + SECOND);
    await sendApiError(s);
    clock.set(at(5) + SECOND);
    await s.service.engine.tick();
    // One drain sends both at once: they may arrive in either order.
    expect((await received(s, r)).sort()).toEqual([`${rule.id} alerts.resolved`, `${rule.id} alerts.triggered`]);

    // At starts_at exactly it applies: fired, then resolved, then fired again, all held back.
    clock.set(at(11));
    expect(await getRule(s, rule.id)).toMatchObject({ silenced: true, silenced_until: iso(at(22)) });
    await sendApiError(s);
    clock.set(at(16));
    await s.service.engine.tick();
    clock.set(at(17));
    await sendApiError(s);
    expect(await getRule(s, rule.id)).toMatchObject({ current_state: 'alert' });
    expect(await received(s, r)).toHaveLength(2);

    // It ends while the rule is still firing: nothing is replayed.
    clock.set(at(22) - 1);
    await s.service.engine.tick();
    expect(await getRule(s, rule.id)).toMatchObject({ current_state: 'alert', silenced: true });
    clock.set(at(22));
    expect(await getRule(s, rule.id)).toMatchObject({ current_state: 'alert', silenced: false, silenced_until: null });
    expect((await s.request('GET', `/v1/silences/${silence.id}`)).body.active).toBe(false);
    // At ends_at exactly the error of minute 17 leaves the window: the rule resolves, and that is sent.
    await s.service.engine.tick();
    expect(await getRule(s, rule.id)).toMatchObject({ current_state: 'ok' });
    expect(await moves()).toEqual(['no_data', 'alert', 'ok', 'alert (silenced)', 'ok (silenced)', 'alert (silenced)', 'ok']);
    expect((await received(s, r)).sort()).toEqual([`${rule.id} alerts.resolved`, `${rule.id} alerts.resolved`, `${rule.id} alerts.triggered`]);
    // And the next firing after it is sent as usual.
    clock.set(at(23));
    await sendApiError(s);
    expect((await received(s, r)).at(-1)).toBe(`${rule.id} alerts.triggered`);
    expect((await outbox(s)).map((e) => e.delivered)).toEqual([true, true, false, false, false, true, true]);
  });

  it('applies to a transition in the same millisecond it was created, and stops applying when deleted', async () => {
    const clock = testClock(START);
    const s = await server(clock);
    const r = await receiver();
    await createEndpoint(s, { url: r.url });
    const rule = await createErrorRule(s);
    clock.advance(SECOND);
    const silence = await createSilence(s, { metric: 'api_errors' });
    await sendApiError(s);
    expect((await historyOf(s, rule.id))[0]).toMatchObject({ to_state: 'alert', silence_id: silence.id });

    clock.advance(MINUTE);
    expect((await s.request('DELETE', `/v1/silences/${silence.id}`)).status).toBe(204);
    expect(await getRule(s, rule.id)).toMatchObject({ current_state: 'alert', silenced: false });
    clock.advance(5 * MINUTE);
    await s.service.engine.tick();
    clock.advance(SECOND);
    await sendApiError(s);
    expect((await received(s, r)).sort()).toEqual([`${rule.id} alerts.resolved`, `${rule.id} alerts.triggered`]);
    expect((await historyOf(s, rule.id)).slice(0, 2).map((t) => t.silence_id)).toEqual([null, null]);
  });

  it('is held back by a silence that survived a restart of the server on the same database', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'alerts-silences-'));
    cleanups.push(async () => {
      rmSync(dir, { recursive: true, force: true });
      await dropDatabaseFor(dir);
    });
    const clock = testClock(START);
    const first = await startTestServer({ clock, dir, env: ALLOW_RECEIVERS });
    const r = await receiver();
    let ruleId: string;
    let silence: Record<string, any>;
    try {
      await createEndpoint(first, { url: r.url });
      ruleId = (await createErrorRule(first)).id;
      silence = await createSilence(first, { rule_id: ruleId });
    } finally {
      await first.close();
    }

    clock.advance(MINUTE);
    const s = await server(clock, { dir });
    expect((await s.request('GET', `/v1/silences/${silence.id}`)).body).toEqual(silence);
    expect(await getRule(s, ruleId)).toMatchObject({ silenced: true });
    await sendApiError(s);
    expect((await historyOf(s, ruleId))[0]).toMatchObject({ to_state: 'alert', silence_id: silence.id });
    expect(await received(s, r)).toEqual([]);
  });

  it.runIf(onPostgres)('is held back on the instance that evaluates it by a silence created through another instance', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'alerts-silences-cluster-'));
    cleanups.push(async () => {
      rmSync(dir, { recursive: true, force: true });
      await dropDatabaseFor(dir);
    });
    const clock = testClock(START);
    const env = { ALERTS_LEASE_TTL: '2s' };
    const first = await server(clock, { dir, env });
    const second = await server(clock, { dir, env });
    await first.service.coordinator.rebalance();
    await second.service.coordinator.rebalance();
    await eventually(async () => first.service.coordinator.held().length + second.service.coordinator.held().length, (n) => n === 64);
    const accountId = (await first.service.apiKeys.authenticate(first.key))!;
    const owner = first.service.engine.owns(accountId) ? first : second;
    const other = owner === first ? second : first;
    expect(other.service.engine.owns(accountId)).toBe(false);
    const otherKey = other === first ? first.key : (await other.service.apiKeys.create('acme')).key;
    const ownerKey = owner === first ? first.key : (await owner.service.apiKeys.create('acme')).key;

    const r = await receiver();
    await createEndpoint(owner, { url: r.url }, ownerKey);
    const rule = await createErrorRule(owner, {}, ownerKey);
    clock.advance(SECOND);
    const created = await other.request('POST', '/v1/silences', { body: silenceBody({ rule_id: rule.id }), key: otherKey });
    expect(created.status, created.text).toBe(201);
    // The owner's answers show it as soon as the notification of its commit arrives (its cached
    // silences are forgotten then); the event path reads it from the database, at once.
    await eventually(async () => (await owner.request('GET', `/v1/alert-rules/${rule.id}`, { key: ownerKey })).body.silenced, (silenced) => silenced === true, 2000);
    await sendApiError(owner, ownerKey);
    const history = (await owner.request('GET', `/v1/alert-rules/${rule.id}/history`, { key: ownerKey })).body.data;
    expect(history[0]).toMatchObject({ to_state: 'alert', event_type: 'alerts.triggered', silence_id: created.body.id });
    expect(await outbox(owner)).toEqual([expect.objectContaining({ rule_id: rule.id, delivered: false })]);

    // Ended through the other instance: the owner's next event is sent.
    expect((await other.request('DELETE', `/v1/silences/${created.body.id}`, { key: otherKey })).status).toBe(204);
    clock.advance(5 * MINUTE);
    await owner.service.engine.tick();
    expect(await received(owner, r)).toEqual([`${rule.id} alerts.resolved`]);
  });
});

describe('the silences operations in /openapi.json', () => {
  it('are documented as ours, with their statuses, and rules document silenced and silenced_until as ours', async () => {
    const s = await server();
    const doc = (await s.request('GET', '/openapi.json', { key: null })).body;
    const operations = {
      createSilence: [doc.paths['/v1/silences'].post, ['201', '400', '401', '409', '413', '415', '500']],
      listSilences: [doc.paths['/v1/silences'].get, ['200', '400', '401', '500']],
      getSilence: [doc.paths['/v1/silences/{silence_id}'].get, ['200', '401', '404', '422', '500']],
      deleteSilence: [doc.paths['/v1/silences/{silence_id}'].delete, ['204', '401', '404', '422', '500']],
    } as const;
    for (const [operationId, [operation, statuses]] of Object.entries(operations)) {
      expect(operation.operationId).toBe(operationId);
      expect(operation.description).toMatch(/Not part of the PolyAI contract/);
      expect(operation.security).toBeUndefined();
      expect(Object.keys(operation.responses).sort()).toEqual([...statuses].sort());
    }
    const body = doc.paths['/v1/silences'].post.requestBody.content['application/json'].schema;
    expect(body.required.sort()).toEqual(['comment', 'ends_at']);
    expect(body.additionalProperties).toBe(false);
    const silence = doc.paths['/v1/silences/{silence_id}'].get.responses['200'].content['application/json'].schema;
    expect(silence.required.sort()).toEqual(SILENCE_KEYS);
    const rule = doc.paths['/v1/alert-rules/{rule_id}'].get.responses['200'].content['application/json'].schema;
    expect(rule.properties.silenced.description).toMatch(/^Ours: /);
    expect(rule.properties.silenced_until.description).toMatch(/^Ours: /);
  });
});
