import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ruleBody, startTestServer, testClock, type TestServer } from './helpers/server.js';

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

const SINCE = '2026-03-15T10:25:00.000Z';
const EVALUATED = '2026-03-15T10:29:30.000Z';
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

/**
 * Puts a rule into a state by writing its evaluation columns directly, as the evaluator
 * would. Done before the account's rules are read, so nothing can have cached the old state.
 */
async function setState(id: string, state: string, values: { since?: string; current_value?: number | null; last_evaluated_at?: string } = {}) {
  const result = await server.service.store.db
    .updateTable('alert_rules')
    .set({ current_state: state, since: SINCE, current_value: 7, last_evaluated_at: EVALUATED, ...values })
    .where('id', '=', id)
    .executeTakeFirst();
  expect(result.numUpdatedRows).toBe(1n);
}

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
    await createRule({ name: 'b', metric: 'call_volume', operator: '<', threshold_value: 5 });
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
    await createRule({ name: 'quiet' });
    await setState(latency.id, 'alert', { current_value: 1875 });
    await setState(errors.id, 'alert', { since: '2026-03-15T10:20:00.000Z', current_value: 7, last_evaluated_at: '2026-03-15T10:29:59.000Z' });

    expect(await activeAlerts()).toEqual([
      {
        alert_rule_id: latency.id,
        name: 'High turn latency (p95)',
        project_id: 'proj_abc123',
        metric: 'turn_latency_p95',
        operator: '>=',
        threshold_value: 1500,
        window_duration: '5m',
        since: SINCE,
        last_evaluated_at: EVALUATED,
        current_value: 1875,
      },
      {
        alert_rule_id: errors.id,
        name: 'API errors',
        project_id: null,
        metric: 'api_errors',
        operator: '>',
        threshold_value: 5,
        window_duration: '10m',
        since: '2026-03-15T10:20:00.000Z',
        last_evaluated_at: '2026-03-15T10:29:59.000Z',
        current_value: 7,
      },
    ]);
  });

  it('lists only rules in state alert, not ok, no_data or unknown', async () => {
    const ok = await createRule({ name: 'ok' });
    const noData = await createRule({ name: 'no_data' });
    const unknown = await createRule({ name: 'unknown' });
    const firing = await createRule({ name: 'alert' });
    await setState(ok.id, 'ok');
    await setState(noData.id, 'no_data', { current_value: null });
    await setState(unknown.id, 'unknown', { current_value: null });
    await setState(firing.id, 'alert');
    expect(ids(await activeAlerts())).toEqual([firing.id]);
  });

  it('filters by project_id and by metric', async () => {
    const p95 = await createRule({ name: 'p95', project_id: 'proj_abc123', metric: 'turn_latency_p95' });
    const crashes = await createRule({ name: 'crashes', project_id: 'proj_other', metric: 'call_crashes', operator: '>', threshold_value: 0 });
    const account = await createRule({ name: 'account-wide', project_id: null, metric: 'call_crashes', operator: '>', threshold_value: 0 });
    for (const rule of [p95, crashes, account]) await setState(rule.id, 'alert');

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

  it('never lists a disabled rule, even when its stored state says alert', async () => {
    const disabled = await createRule({ name: 'disabled', enabled: false });
    const enabled = await createRule({ name: 'enabled' });
    await setState(disabled.id, 'alert');
    await setState(enabled.id, 'alert');
    expect(ids(await activeAlerts())).toEqual([enabled.id]);
    expect(ids(await activeAlerts(`?project_id=proj_abc123&metric=turn_latency_p95`))).toEqual([enabled.id]);
  });

  it('stops listing a firing rule once it is disabled or deleted', async () => {
    const toDisable = await createRule({ name: 'to disable' });
    const toDelete = await createRule({ name: 'to delete' });
    const stays = await createRule({ name: 'stays' });
    for (const rule of [toDisable, toDelete, stays]) await setState(rule.id, 'alert');
    expect(ids(await activeAlerts())).toEqual([toDisable.id, toDelete.id, stays.id]);

    expect((await server.request('PATCH', `/v1/alert-rules/${toDisable.id}`, { body: { enabled: false } })).status).toBe(200);
    expect(ids(await activeAlerts())).toEqual([toDelete.id, stays.id]);
    expect((await server.request('DELETE', `/v1/alert-rules/${toDelete.id}`)).status).toBe(204);
    expect(ids(await activeAlerts())).toEqual([stays.id]);
  });

  it("never shows another account's alerts", async () => {
    const otherKey = await server.newKey('globex');
    const theirs = await createRule({ name: 'theirs' }, otherKey);
    const mine = await createRule({ name: 'mine' });
    await setState(theirs.id, 'alert');
    await setState(mine.id, 'alert');
    expect(ids(await activeAlerts())).toEqual([mine.id]);
    expect(ids(await activeAlerts('?project_id=proj_abc123'))).toEqual([mine.id]);
    expect(ids(await activeAlerts('', otherKey))).toEqual([theirs.id]);
  });

  it('agrees with GET /v1/alert-rules?state=alert on which enabled rules fire and on their fields', async () => {
    const a = await createRule({ name: 'a' });
    const b = await createRule({ name: 'b', metric: 'function_errors', operator: '>=', threshold_value: 3, project_id: null });
    await createRule({ name: 'c' });
    const off = await createRule({ name: 'off', enabled: false });
    await setState(a.id, 'alert', { current_value: 1600 });
    await setState(b.id, 'alert', { current_value: 3, since: '2026-03-15T10:00:00.000Z' });
    await setState(off.id, 'alert');

    const alerts = await activeAlerts();
    const rules = (await server.request('GET', '/v1/alert-rules?state=alert&enabled=true')).body.data as any[];
    expect(ids(alerts)).toEqual(rules.map((r) => r.id));
    expect(ids(alerts)).toEqual([a.id, b.id]);
    for (const [i, rule] of rules.entries()) {
      expect(rule.current_state).toBe('alert');
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
    // The disabled rule's stored state says alert, but it is not an active alert.
    expect(ids(alerts)).not.toContain(off.id);
  });

  it('requires an API key', async () => {
    const res = await server.request('GET', '/v1/alerts', { key: null });
    expect(res.status).toBe(401);
    const unknown = await server.request('GET', '/v1/alerts', { key: 'not-a-real-key-0000000000000000000000' });
    expect(unknown.status).toBe(401);
  });
});
