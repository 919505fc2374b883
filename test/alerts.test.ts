import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ruleBody, startTestServer, testClock, type TestServer } from './helpers/server.js';

/**
 * Active alerts are the enabled rules in state `alert`. Rules get there (and leave) the
 * real way: telemetry crosses the threshold, or the clock moves the window past it.
 */

const START = Date.parse('2026-03-15T10:30:00.000Z');
const clock = testClock(START);
let server: TestServer;

beforeEach(async () => {
  clock.set(START);
  server = await startTestServer({ clock });
});
afterEach(async () => {
  await server.close();
});

const iso = (ms: number) => new Date(ms).toISOString();
const ACTIVE_ALERT_KEYS = [
  'alert_rule_id',
  'current_value',
  'last_evaluated_at',
  'metric',
  'name',
  'operator',
  'project_id',
  'since',
  'threshold_value',
  'window_duration',
].sort();

async function createRule(overrides: Record<string, unknown> = {}, key?: string) {
  const res = await server.request('POST', '/v1/alert-rules', { body: ruleBody(overrides), key });
  expect(res.status, res.text).toBe(201);
  return res.body as Record<string, any> & { id: string };
}

async function getRule(id: string, key?: string) {
  const res = await server.request('GET', `/v1/alert-rules/${id}`, { key });
  expect(res.status, res.text).toBe(200);
  return res.body as Record<string, any> & { id: string };
}

type Event = { type: string; project_id?: string | null; latency_ms?: number; timestamp?: string };

async function send(events: Event[], key?: string) {
  const res = await server.request('POST', '/v1/telemetry/events', { body: { events }, key });
  expect(res.status, res.text).toBe(202);
  expect(res.body).toEqual({ accepted: events.length });
}

const repeat = (n: number, event: Event): Event[] => Array.from({ length: n }, () => ({ ...event }));
/** Slow turns: p50 and p95 of proj_abc123 about 1875 ms (over the default rule's 1500). */
const slowTurns = (project = 'proj_abc123') => repeat(20, { type: 'turn', project_id: project, latency_ms: 1875 });

/** Within the 1% relative accuracy the latency metrics promise. */
const near = (value: number) => expect.toSatisfy((v: unknown) => typeof v === 'number' && Math.abs(v - value) <= value * 0.01);

async function activeAlerts(query = '', key?: string): Promise<any[]> {
  const res = await server.request('GET', `/v1/alerts${query}`, { key });
  expect(res.status, res.text).toBe(200);
  expect(Object.keys(res.body)).toEqual(['data']);
  for (const alert of res.body.data) expect(Object.keys(alert).sort()).toEqual(ACTIVE_ALERT_KEYS);
  return res.body.data;
}

const ids = (alerts: { alert_rule_id: string }[]) => alerts.map((a) => a.alert_rule_id);

describe('active alerts', () => {
  it('answers {"data": []} when no rule exists', async () => {
    const res = await server.request('GET', '/v1/alerts');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ data: [] });
  });

  it('answers {"data": []} when rules exist but none is firing', async () => {
    await createRule({ name: 'a' });
    await createRule({ name: 'b', metric: 'call_volume', operator: '>', threshold_value: 5 });
    await send([...repeat(3, { type: 'turn', project_id: 'proj_abc123', latency_ms: 300 }), { type: 'call', project_id: 'proj_abc123' }]);
    expect(await activeAlerts()).toEqual([]);
  });

  it('lists each firing rule as an active alert with the documented fields, oldest rule first', async () => {
    const latency = await createRule({ name: 'High turn latency (p95)' });
    const errors = await createRule({
      name: 'API errors',
      project_id: null,
      metric: 'api_errors',
      operator: '>',
      threshold_value: 5,
      window_duration: '10m',
    });
    await createRule({ name: 'quiet', threshold_value: 5000 });

    clock.advance(30_000);
    // Account-wide errors, some with a project and some without: all count.
    await send([...repeat(4, { type: 'api_error' }), ...repeat(3, { type: 'api_error', project_id: 'proj_xyz' })]);
    clock.advance(30_000);
    await send(slowTurns());
    clock.advance(5_000);
    await server.service.engine.tick();

    expect(await activeAlerts()).toEqual([
      {
        alert_rule_id: latency.id,
        name: 'High turn latency (p95)',
        project_id: 'proj_abc123',
        metric: 'turn_latency_p95',
        operator: '>=',
        threshold_value: 1500,
        window_duration: '5m',
        since: iso(START + 60_000),
        last_evaluated_at: iso(START + 65_000),
        current_value: near(1875),
      },
      {
        alert_rule_id: errors.id,
        name: 'API errors',
        project_id: null,
        metric: 'api_errors',
        operator: '>',
        threshold_value: 5,
        window_duration: '10m',
        since: iso(START + 30_000),
        last_evaluated_at: iso(START + 65_000),
        current_value: 7,
      },
    ]);
  });

  it('lists only rules in state alert, not ok, no_data or unknown', async () => {
    const ok = await createRule({ name: 'ok', threshold_value: 5000 });
    const noData = await createRule({ name: 'no_data', project_id: 'proj_silent' });
    const unknown = await createRule({ name: 'unknown', enabled: false });
    const firing = await createRule({ name: 'alert' });
    await send(slowTurns());
    expect((await getRule(ok.id)).current_state).toBe('ok');
    expect((await getRule(noData.id)).current_state).toBe('no_data');
    expect((await getRule(unknown.id)).current_state).toBe('unknown');
    expect((await getRule(firing.id)).current_state).toBe('alert');
    expect(ids(await activeAlerts())).toEqual([firing.id]);
  });

  it('stops listing a rule once its window no longer breaches: resolved (ok) or out of data (no_data)', async () => {
    const latency = await createRule({ name: 'latency' });
    const errors = await createRule({ name: 'errors', project_id: null, metric: 'api_errors', operator: '>=', threshold_value: 2 });
    await send([...slowTurns(), ...repeat(2, { type: 'api_error' })]);
    expect(ids(await activeAlerts())).toEqual([latency.id, errors.id]);

    // Still inside the 5 minute window: still firing, since unchanged.
    clock.advance(5 * 60_000 - 1000);
    await server.service.engine.tick();
    const stillFiring = await activeAlerts();
    expect(ids(stillFiring)).toEqual([latency.id, errors.id]);
    expect(stillFiring.map((a) => a.since)).toEqual([iso(START), iso(START)]);

    // The events are now exactly 5 minutes old: out of the window.
    clock.advance(1000);
    await server.service.engine.tick();
    expect(await activeAlerts()).toEqual([]);
    expect((await getRule(latency.id)).current_state).toBe('no_data');
    expect(await getRule(errors.id)).toMatchObject({ current_state: 'ok', current_value: 0, since: iso(START + 5 * 60_000) });
    const events = await server.service.store.alertEvents.list();
    // Both fired on the same batch (in either order); only the count metric resolves: alert -> no_data is silent.
    const pairs = events.map((e) => `${e.event_type} ${e.rule_id}`);
    expect(pairs.slice(0, 2).sort()).toEqual([`alerts.triggered ${latency.id}`, `alerts.triggered ${errors.id}`].sort());
    expect(pairs.slice(2)).toEqual([`alerts.resolved ${errors.id}`]);
  });

  it('filters by project_id and by metric', async () => {
    const p95 = await createRule({ name: 'p95', project_id: 'proj_abc123', metric: 'turn_latency_p95' });
    const crashes = await createRule({ name: 'crashes', project_id: 'proj_other', metric: 'call_crashes', operator: '>', threshold_value: 0 });
    const account = await createRule({ name: 'account-wide', project_id: null, metric: 'call_crashes', operator: '>', threshold_value: 0 });
    await send([...slowTurns(), { type: 'call_crash', project_id: 'proj_other' }]);

    expect(ids(await activeAlerts())).toEqual([p95.id, crashes.id, account.id]);
    expect(ids(await activeAlerts('?project_id=proj_abc123'))).toEqual([p95.id]);
    expect(ids(await activeAlerts('?project_id=proj_other'))).toEqual([crashes.id]);
    expect(ids(await activeAlerts('?project_id=proj_missing'))).toEqual([]);
    expect(ids(await activeAlerts('?metric=call_crashes'))).toEqual([crashes.id, account.id]);
    expect(ids(await activeAlerts('?metric=turn_latency_p95'))).toEqual([p95.id]);
    expect(ids(await activeAlerts('?metric=api_errors'))).toEqual([]);
    expect(ids(await activeAlerts('?metric=call_crashes&project_id=proj_other'))).toEqual([crashes.id]);
    expect(ids(await activeAlerts('?metric=turn_latency_p95&project_id=proj_other'))).toEqual([]);
  });

  it('rejects an unknown metric filter with 400', async () => {
    const res = await server.request('GET', '/v1/alerts?metric=cpu_load');
    expect(res.status).toBe(400);
    expect(res.body.message).toEqual(expect.any(String));
  });

  it('never lists a disabled rule, even when its condition holds or its stored state says alert', async () => {
    const disabled = await createRule({ name: 'disabled', enabled: false });
    const enabled = await createRule({ name: 'enabled' });
    const stale = await createRule({ name: 'stale', enabled: false });
    await send(slowTurns());
    expect((await getRule(disabled.id)).current_state).toBe('unknown');
    expect((await getRule(enabled.id)).current_state).toBe('alert');

    // A disabled rule is not evaluated, so its row is what the API shows: even a row that
    // (say, after a crash) still says alert does not make it an active alert.
    const result = await server.service.store.db
      .updateTable('alert_rules')
      .set({ current_state: 'alert', since: iso(START), current_value: 1875, last_evaluated_at: iso(START) })
      .where('id', '=', stale.id)
      .executeTakeFirst();
    expect(result.numUpdatedRows).toBe(1n);

    expect(ids(await activeAlerts())).toEqual([enabled.id]);
    expect(ids(await activeAlerts(`?project_id=proj_abc123&metric=turn_latency_p95`))).toEqual([enabled.id]);
  });

  it('stops listing a firing rule once it is disabled or deleted, and lists it again when re-enabled', async () => {
    const toDisable = await createRule({ name: 'to disable' });
    const toDelete = await createRule({ name: 'to delete' });
    const stays = await createRule({ name: 'stays' });
    await send(slowTurns());
    expect(ids(await activeAlerts())).toEqual([toDisable.id, toDelete.id, stays.id]);

    const disabled = await server.request('PATCH', `/v1/alert-rules/${toDisable.id}`, { body: { enabled: false } });
    expect(disabled.status).toBe(200);
    expect(disabled.body).toMatchObject({ enabled: false, current_state: 'unknown', current_value: null });
    expect(ids(await activeAlerts())).toEqual([toDelete.id, stays.id]);
    expect((await server.request('DELETE', `/v1/alert-rules/${toDelete.id}`)).status).toBe(204);
    expect(ids(await activeAlerts())).toEqual([stays.id]);

    // Ticks and new telemetry do not bring back what was disabled or deleted.
    clock.advance(10_000);
    await send(slowTurns());
    await server.service.engine.tick();
    expect(ids(await activeAlerts())).toEqual([stays.id]);

    clock.advance(10_000);
    const enabled = await server.request('PATCH', `/v1/alert-rules/${toDisable.id}`, { body: { enabled: true } });
    expect(enabled.body).toMatchObject({ enabled: true, current_state: 'alert', since: iso(clock.now()) });
    expect(ids(await activeAlerts())).toEqual([toDisable.id, stays.id]);
  });

  it("never shows another account's alerts", async () => {
    const otherKey = await server.newKey('globex');
    const theirs = await createRule({ name: 'theirs' }, otherKey);
    const mine = await createRule({ name: 'mine' });
    // Only our telemetry: their rule on the same project id does not move.
    await send(slowTurns());
    expect(ids(await activeAlerts())).toEqual([mine.id]);
    expect(ids(await activeAlerts('', otherKey))).toEqual([]);
    expect((await getRule(theirs.id, otherKey)).current_state).toBe('no_data');

    await send(slowTurns(), otherKey);
    expect(ids(await activeAlerts())).toEqual([mine.id]);
    expect(ids(await activeAlerts('?project_id=proj_abc123'))).toEqual([mine.id]);
    expect(ids(await activeAlerts('', otherKey))).toEqual([theirs.id]);
    expect(ids(await activeAlerts('?project_id=proj_abc123&metric=turn_latency_p95', otherKey))).toEqual([theirs.id]);
  });

  it('agrees with GET /v1/alert-rules?state=alert on which enabled rules fire and on their fields', async () => {
    const a = await createRule({ name: 'a' });
    const b = await createRule({ name: 'b', metric: 'function_errors', operator: '>=', threshold_value: 3, project_id: null });
    await createRule({ name: 'c', threshold_value: 5000 });
    const off = await createRule({ name: 'off', metric: 'function_errors', operator: '>=', threshold_value: 3, project_id: null, enabled: false });
    await send(repeat(3, { type: 'function_error', project_id: 'proj_fn' }));
    clock.advance(2000);
    await send(slowTurns());
    clock.advance(1000);
    await server.service.engine.tick();

    const alerts = await activeAlerts();
    const rules = (await server.request('GET', '/v1/alert-rules?state=alert&enabled=true')).body.data as any[];
    expect(ids(alerts)).toEqual(rules.map((r) => r.id));
    expect(ids(alerts)).toEqual([a.id, b.id]);
    expect(rules.map((r) => r.since)).toEqual([iso(START + 2000), iso(START)]);
    expect(rules[1].current_value).toBe(3);
    for (const [i, rule] of rules.entries()) {
      expect(rule.current_state).toBe('alert');
      expect(rule.last_evaluated_at).toBe(iso(START + 3000));
      expect(alerts[i]).toEqual({
        alert_rule_id: rule.id,
        name: rule.name,
        project_id: rule.project_id,
        metric: rule.metric,
        operator: rule.operator,
        threshold_value: rule.threshold_value,
        window_duration: rule.window_duration,
        since: rule.since,
        last_evaluated_at: rule.last_evaluated_at,
        current_value: rule.current_value,
      });
    }
    // The disabled rule's condition holds too, but it is not evaluated and not an active alert.
    expect(ids(alerts)).not.toContain(off.id);
    expect((await getRule(off.id)).current_state).toBe('unknown');
  });

  it('requires an API key', async () => {
    const res = await server.request('GET', '/v1/alerts', { key: null });
    expect(res.status).toBe(401);
    const unknown = await server.request('GET', '/v1/alerts', { key: 'not-a-real-key-0000000000000000000000' });
    expect(unknown.status).toBe(401);
  });
});
