import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { validateComponent } from './helpers/published-spec.js';
import { startTestServer, testClock, type TestServer } from './helpers/server.js';

const START = Date.parse('2026-03-15T10:30:00.000Z');
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

const clock = testClock(START);
let server: TestServer;

beforeEach(async () => {
  clock.set(START);
  server = await startTestServer({ clock });
});
afterEach(async () => {
  await server.close();
});

// ---- vocabulary --------------------------------------------------------------------------

const COUNT_EVENT = {
  api_errors: 'api_error',
  function_errors: 'function_error',
  call_crashes: 'call_crash',
  call_volume: 'call',
} as const;
type CountMetric = keyof typeof COUNT_EVENT;
const COUNT_METRICS = Object.keys(COUNT_EVENT) as CountMetric[];
const LATENCY_METRICS = ['turn_latency_p50', 'turn_latency_p95'] as const;
type Metric = CountMetric | (typeof LATENCY_METRICS)[number];
const METRICS: Metric[] = [...LATENCY_METRICS, ...COUNT_METRICS];
const OPERATORS = ['>', '<', '>=', '<='] as const;
const WINDOWS = { '5m': 5 * MINUTE, '10m': 10 * MINUTE, '60m': 60 * MINUTE } as const;

const isLatency = (metric: Metric) => metric.startsWith('turn_latency');
const iso = (ms: number) => new Date(ms).toISOString();
/** The time `offset` ms after the start of the test, as the API writes it. */
const t = (offset: number) => iso(START + offset);

interface TelemetryInput {
  type: string;
  project_id?: string | null;
  timestamp?: string;
  latency_ms?: number;
}

const many = (n: number, event: TelemetryInput): TelemetryInput[] => Array.from({ length: n }, () => ({ ...event }));

/** n events that count toward `metric`; for latency metrics, n turns of `latencyMs`. */
function eventsFor(metric: Metric, n: number, extra: Partial<TelemetryInput> = {}, latencyMs = 2000): TelemetryInput[] {
  return isLatency(metric) ? many(n, { type: 'turn', latency_ms: latencyMs, ...extra }) : many(n, { type: COUNT_EVENT[metric as CountMetric], ...extra });
}

async function send(events: TelemetryInput[], key?: string): Promise<void> {
  const res = await server.request('POST', '/v1/telemetry/events', { body: { events }, key });
  expect(res.status, res.text).toBe(202);
  expect(res.body).toEqual({ accepted: events.length });
}

/** A rule body: account-wide "api_errors > 2 over 5m" unless overridden. */
function ruleBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { name: 'API errors', project_id: null, metric: 'api_errors', operator: '>', threshold_value: 2, window_duration: '5m', ...overrides };
}

async function createRule(overrides: Record<string, unknown> = {}, key?: string): Promise<any> {
  const res = await server.request('POST', '/v1/alert-rules', { body: ruleBody(overrides), key });
  expect(res.status, res.text).toBe(201);
  return res.body;
}

async function getRule(id: string, key?: string): Promise<any> {
  const res = await server.request('GET', `/v1/alert-rules/${id}`, { key });
  expect(res.status, res.text).toBe(200);
  return res.body;
}

async function patchRule(id: string, patch: Record<string, unknown>): Promise<any> {
  const res = await server.request('PATCH', `/v1/alert-rules/${id}`, { body: patch });
  expect(res.status, res.text).toBe(200);
  return res.body;
}

/** Moves the clock to `offset` ms after the start and runs one evaluation pass. */
async function tickAt(offset: number): Promise<void> {
  clock.set(START + offset);
  await server.service.engine.tick();
}

async function activeAlerts(query = '', key?: string): Promise<any[]> {
  const res = await server.request('GET', `/v1/alerts${query}`, { key });
  expect(res.status, res.text).toBe(200);
  return res.body.data;
}

async function ruleNames(query: string): Promise<string[]> {
  const res = await server.request('GET', `/v1/alert-rules${query}`);
  expect(res.status, res.text).toBe(200);
  return res.body.data.map((r: { name: string }) => r.name);
}

interface OutboxEvent {
  id: string;
  account_id: string;
  rule_id: string;
  event_type: string;
  /** The parsed webhook body. */
  body: any;
}

/**
 * The outbox, oldest first. Every payload is checked on the way: it validates against the
 * published WebhookEvent schema, agrees with its row, and every event id is a unique evt_ id.
 */
async function outbox(ruleId?: string): Promise<OutboxEvent[]> {
  const rows = await server.service.store.alertEvents.list();
  const events = rows.map((row) => {
    const body = JSON.parse(row.payload);
    expect(validateComponent('WebhookEvent', body), row.payload).toEqual([]);
    expect(row.id).toMatch(/^evt_[A-Za-z0-9]+$/);
    expect(body.event_type).toBe(row.event_type);
    expect(body.alert.id).toBe(row.rule_id);
    if (body.id !== undefined) expect(body.id).toBe(row.id);
    if (body.event_type === 'alerts.resolved') {
      expect(body.alert.previous_state).toBe('alert');
      expect(typeof body.alert.resolved_at, row.payload).toBe('string');
    } else {
      expect(body.alert.resolved_at, row.payload).toBeUndefined();
      expect(body.alert.previous_state).not.toBe('alert');
    }
    return { id: row.id, account_id: row.account_id, rule_id: row.rule_id, event_type: row.event_type, body };
  });
  expect(new Set(events.map((e) => e.id)).size).toBe(events.length);
  return ruleId === undefined ? events : events.filter((e) => e.rule_id === ruleId);
}

/** [event_type, previous_state] of each event of a rule: the transitions it reported. */
async function transitions(ruleId: string): Promise<[string, string][]> {
  return (await outbox(ruleId)).map((e) => [e.event_type, e.body.alert.previous_state]);
}

function expectWithin1Percent(value: unknown, exact: number): void {
  expect(typeof value).toBe('number');
  expect(Math.abs((value as number) - exact) / exact, `${String(value)} against ${exact}`).toBeLessThanOrEqual(0.01);
}

// ---- states and transitions --------------------------------------------------------------

describe('states and transitions of count metrics', () => {
  it.each(COUNT_METRICS)(
    '%s: no_data before any telemetry, ok at or under the threshold, alert above it, ok again as the events leave the window',
    async (metric) => {
      const rule = await createRule({ metric, project_id: 'proj_a', operator: '>', threshold_value: 2 });
      expect(rule).toMatchObject({ current_state: 'no_data', current_value: null, since: t(0), last_evaluated_at: t(0) });

      clock.set(START + 10 * SECOND);
      await send(eventsFor(metric, 2, { project_id: 'proj_a' }));
      expect(await getRule(rule.id)).toMatchObject({ current_state: 'ok', current_value: 2, since: t(10 * SECOND) });

      clock.set(START + 20 * SECOND);
      await send(eventsFor(metric, 1, { project_id: 'proj_a' }));
      expect(await getRule(rule.id)).toMatchObject({ current_state: 'alert', current_value: 3, since: t(20 * SECOND) });
      expect(await transitions(rule.id)).toEqual([['alerts.triggered', 'ok']]);

      // The two events of +10s leave the window first: 1 left, not above 2.
      await tickAt(10 * SECOND + 5 * MINUTE);
      expect(await getRule(rule.id)).toMatchObject({ current_state: 'ok', current_value: 1, since: t(10 * SECOND + 5 * MINUTE) });
      await tickAt(20 * SECOND + 5 * MINUTE);
      expect(await getRule(rule.id)).toMatchObject({ current_state: 'ok', current_value: 0, since: t(10 * SECOND + 5 * MINUTE) });

      const events = await outbox(rule.id);
      expect(events.map((e) => e.event_type)).toEqual(['alerts.triggered', 'alerts.resolved']);
      expect(events[0]!.body.alert).toMatchObject({ metric, current_value: 3, previous_state: 'ok', triggered_at: t(20 * SECOND) });
      expect(events[1]!.body.alert).toMatchObject({
        metric,
        current_value: 1,
        previous_state: 'alert',
        triggered_at: t(20 * SECOND),
        resolved_at: t(10 * SECOND + 5 * MINUTE),
      });
    },
  );

  it.each(COUNT_METRICS)('%s: goes from no_data straight to alert when the first batch already breaches', async (metric) => {
    const rule = await createRule({ metric, project_id: 'proj_a', operator: '>=', threshold_value: 4 });
    expect(rule.current_state).toBe('no_data');
    await send(eventsFor(metric, 4, { project_id: 'proj_a' }));
    expect(await getRule(rule.id)).toMatchObject({ current_state: 'alert', current_value: 4 });
    expect(await transitions(rule.id)).toEqual([['alerts.triggered', 'no_data']]);
  });
});

describe('states and transitions of latency metrics', () => {
  it.each(LATENCY_METRICS)(
    '%s: no_data without turns, ok with fast turns, alert with slow ones, no_data without an event when the turns leave the window, ok again when fast turns dominate',
    async (metric) => {
      const rule = await createRule({ metric, project_id: 'proj_a', operator: '>', threshold_value: 1000 });
      expect(rule).toMatchObject({ current_state: 'no_data', current_value: null });

      await send(eventsFor(metric, 20, { project_id: 'proj_a' }, 400));
      const fast = await getRule(rule.id);
      expect(fast.current_state).toBe('ok');
      expectWithin1Percent(fast.current_value, 400);

      clock.set(START + 10 * SECOND);
      await send(eventsFor(metric, 100, { project_id: 'proj_a' }, 2000));
      const slow = await getRule(rule.id);
      expect(slow).toMatchObject({ current_state: 'alert', since: t(10 * SECOND) });
      expectWithin1Percent(slow.current_value, 2000);
      expect(await transitions(rule.id)).toEqual([['alerts.triggered', 'ok']]);

      // Fast turns leave first: still firing on the slow ones alone.
      await tickAt(5 * MINUTE);
      expect((await getRule(rule.id)).current_state).toBe('alert');
      // No turns in the window at all: no_data, which resolves nothing.
      await tickAt(10 * SECOND + 5 * MINUTE);
      expect(await getRule(rule.id)).toMatchObject({ current_state: 'no_data', current_value: null, since: t(10 * SECOND + 5 * MINUTE) });
      expect(await transitions(rule.id)).toEqual([['alerts.triggered', 'ok']]);
      expect(await activeAlerts()).toEqual([]);

      await send(eventsFor(metric, 100, { project_id: 'proj_a' }, 2000));
      expect((await getRule(rule.id)).current_state).toBe('alert');
      // 5,000 fast turns against 100 slow ones: the slow 2% are above even p95.
      clock.advance(SECOND);
      await send(eventsFor(metric, 5000, { project_id: 'proj_a' }, 400));
      const resolved = await getRule(rule.id);
      expect(resolved.current_state).toBe('ok');
      expectWithin1Percent(resolved.current_value, 400);
      expect(await transitions(rule.id)).toEqual([
        ['alerts.triggered', 'ok'],
        ['alerts.triggered', 'no_data'],
        ['alerts.resolved', 'alert'],
      ]);
    },
  );

  it('p50 and p95 of the same turns differ as the percentiles of the distribution do', async () => {
    const p50 = await createRule({ name: 'p50', metric: 'turn_latency_p50', operator: '>', threshold_value: 1000 });
    const p95 = await createRule({ name: 'p95', metric: 'turn_latency_p95', operator: '>', threshold_value: 1000 });
    // 90 turns at 300 ms and 10 at 3000 ms: rank 49 is 300 ms, rank 94 is 3000 ms.
    await send([...eventsFor('turn_latency_p50', 90, {}, 300), ...eventsFor('turn_latency_p50', 10, {}, 3000)]);
    const [a, b] = [await getRule(p50.id), await getRule(p95.id)];
    expect(a.current_state).toBe('ok');
    expectWithin1Percent(a.current_value, 300);
    expect(b.current_state).toBe('alert');
    expectWithin1Percent(b.current_value, 3000);
  });
});

// ---- operators and boundaries ------------------------------------------------------------

describe('operators and boundary values', () => {
  /** States of rules with thresholds value-1, value, value+1. */
  const EXPECTED: Record<(typeof OPERATORS)[number], [string, string, string]> = {
    '>': ['alert', 'ok', 'ok'],
    '>=': ['alert', 'alert', 'ok'],
    '<': ['ok', 'ok', 'alert'],
    '<=': ['ok', 'alert', 'alert'],
  };

  for (const metric of METRICS) {
    it.each(OPERATORS)(
      `${metric} with %s: compares the value with the threshold below, at and above it (at it only >= and <= fire)`,
      async (operator) => {
        await send(eventsFor(metric, 5, { project_id: 'proj_a' }, 1200));
        // The value the engine measures: 5 events, or about 1200 ms.
        const probe = await createRule({ name: 'probe', metric, project_id: 'proj_a', operator: '>=', threshold_value: 0 });
        const value = probe.current_value as number;
        if (isLatency(metric)) expectWithin1Percent(value, 1200);
        else expect(value).toBe(5);

        const states: string[] = [];
        const ids: string[] = [];
        for (const threshold of [value - 1, value, value + 1]) {
          const rule = await createRule({ name: `at ${threshold}`, metric, project_id: 'proj_a', operator, threshold_value: threshold });
          expect(rule.current_value).toBe(value);
          states.push(rule.current_state);
          ids.push(rule.id);
        }
        expect(states).toEqual(EXPECTED[operator]);
        // Each rule that fired on creation reported it once, from unknown (its state before).
        for (const [i, id] of ids.entries()) {
          expect(await transitions(id)).toEqual(states[i] === 'alert' ? [['alerts.triggered', 'unknown']] : []);
        }
      },
    );
  }

  it('>= fires the moment the count reaches the threshold; > waits for one more', async () => {
    const atLeast = await createRule({ name: '>= 3', operator: '>=', threshold_value: 3 });
    const above = await createRule({ name: '> 3', operator: '>', threshold_value: 3 });
    await send(eventsFor('api_errors', 2));
    expect((await getRule(atLeast.id)).current_state).toBe('ok');
    await send(eventsFor('api_errors', 1));
    expect((await getRule(atLeast.id)).current_state).toBe('alert');
    expect((await getRule(above.id)).current_state).toBe('ok');
    await send(eventsFor('api_errors', 1));
    expect((await getRule(above.id)).current_state).toBe('alert');
  });

  it('<= fires the moment a sliding count drops to the threshold; < waits for one less', async () => {
    await send(eventsFor('call_volume', 1));
    clock.set(START + MINUTE);
    await send(eventsFor('call_volume', 2));
    const atMost = await createRule({ name: '<= 2', metric: 'call_volume', operator: '<=', threshold_value: 2 });
    const below = await createRule({ name: '< 2', metric: 'call_volume', operator: '<', threshold_value: 2 });
    expect([(await getRule(atMost.id)).current_state, (await getRule(below.id)).current_state]).toEqual(['ok', 'ok']);
    await tickAt(5 * MINUTE);
    expect(await getRule(atMost.id)).toMatchObject({ current_state: 'alert', current_value: 2 });
    expect((await getRule(below.id)).current_state).toBe('ok');
    await tickAt(6 * MINUTE);
    expect(await getRule(below.id)).toMatchObject({ current_state: 'alert', current_value: 0 });
  });

  it('a zero threshold: "<= 0" fires on a quiet known scope, "< 0" never can, "> 0" fires on the first event', async () => {
    await send([{ type: 'call' }]);
    const atMost = await createRule({ name: '<= 0', operator: '<=', threshold_value: 0 });
    const below = await createRule({ name: '< 0', operator: '<', threshold_value: 0 });
    const above = await createRule({ name: '> 0', operator: '>', threshold_value: 0 });
    expect([atMost, below, above].map((r) => [r.current_state, r.current_value])).toEqual([
      ['alert', 0],
      ['ok', 0],
      ['ok', 0],
    ]);
    await send([{ type: 'api_error' }]);
    expect([(await getRule(atMost.id)).current_state, (await getRule(above.id)).current_state]).toEqual(['ok', 'alert']);
  });
});

// ---- missing data ------------------------------------------------------------------------

describe('missing data', () => {
  it.each(LATENCY_METRICS)('%s is no_data while the scope sends calls and errors but no turns', async (metric) => {
    await send([{ type: 'call' }, { type: 'api_error' }, { type: 'call_crash' }, { type: 'function_error' }]);
    const rule = await createRule({ metric, operator: '<', threshold_value: 1000 });
    expect(rule).toMatchObject({ current_state: 'no_data', current_value: null });
    await send([{ type: 'call' }]);
    await tickAt(MINUTE);
    expect(await getRule(rule.id)).toMatchObject({ current_state: 'no_data', current_value: null, last_evaluated_at: t(MINUTE) });
    expect(await outbox()).toEqual([]);
  });

  it.each(COUNT_METRICS)('%s counts 0, not no_data, in a quiet scope that sent other telemetry', async (metric) => {
    // A turn makes the scope known without counting toward any count metric.
    await send([{ type: 'turn', latency_ms: 500, project_id: 'proj_a' }]);
    const rule = await createRule({ metric, project_id: 'proj_a', operator: '<', threshold_value: 1 });
    expect(rule).toMatchObject({ current_state: 'alert', current_value: 0 });
    expect(await transitions(rule.id)).toEqual([['alerts.triggered', 'unknown']]);
  });

  it('call_volume below 5 fires when traffic stops, on a tick, with no telemetry arriving', async () => {
    await send(eventsFor('call_volume', 10));
    const rule = await createRule({ metric: 'call_volume', operator: '<', threshold_value: 5 });
    expect(rule).toMatchObject({ current_state: 'ok', current_value: 10 });
    await tickAt(5 * MINUTE - SECOND);
    expect((await getRule(rule.id)).current_state).toBe('ok');
    await tickAt(5 * MINUTE);
    expect(await getRule(rule.id)).toMatchObject({ current_state: 'alert', current_value: 0, since: t(5 * MINUTE) });
    expect(await transitions(rule.id)).toEqual([['alerts.triggered', 'ok']]);
    expect((await activeAlerts()).map((a) => a.alert_rule_id)).toEqual([rule.id]);
  });

  it('a scope that never sent telemetry is no_data: an unseen project, a project-less batch, another account', async () => {
    const globex = await server.newKey('globex');
    const unseen = await createRule({ name: 'unseen project', metric: 'call_volume', operator: '<', threshold_value: 5, project_id: 'proj_z' });
    const account = await createRule({ name: 'account', metric: 'call_volume', operator: '<', threshold_value: 5 });
    expect([unseen.current_state, account.current_state]).toEqual(['no_data', 'no_data']);

    // Another account's telemetry makes nothing of this account known.
    await send(eventsFor('call_volume', 3, { project_id: 'proj_z' }), globex);
    expect((await getRule(unseen.id)).current_state).toBe('no_data');
    expect((await getRule(account.id)).current_state).toBe('no_data');

    // Telemetry without a project (or of another project) makes the account known, not proj_z.
    await send([{ type: 'call' }, { type: 'call', project_id: 'proj_y' }]);
    expect(await getRule(account.id)).toMatchObject({ current_state: 'alert', current_value: 2 });
    expect(await getRule(unseen.id)).toMatchObject({ current_state: 'no_data', current_value: null });
    await tickAt(HOUR);
    expect(await getRule(unseen.id)).toMatchObject({ current_state: 'no_data', current_value: null });
  });

  it('a scope silent for 24 hours becomes no_data without an event, and telemetry brings it back', async () => {
    await send([{ type: 'call', project_id: 'proj_a' }]);
    const rule = await createRule({ metric: 'call_volume', project_id: 'proj_a', operator: '<', threshold_value: 5 });
    expect(rule).toMatchObject({ current_state: 'alert', current_value: 1 });

    await tickAt(HOUR);
    await tickAt(DAY - SECOND);
    expect(await getRule(rule.id)).toMatchObject({ current_state: 'alert', current_value: 0, since: t(0) });
    await tickAt(DAY);
    expect(await getRule(rule.id)).toMatchObject({ current_state: 'no_data', current_value: null, since: t(DAY) });
    expect(await activeAlerts()).toEqual([]);
    expect(await transitions(rule.id)).toEqual([['alerts.triggered', 'unknown']]);

    await tickAt(2 * DAY);
    expect((await getRule(rule.id)).current_state).toBe('no_data');
    await send([{ type: 'call', project_id: 'proj_a' }]);
    expect(await getRule(rule.id)).toMatchObject({ current_state: 'alert', current_value: 1, since: t(2 * DAY) });
    expect(await transitions(rule.id)).toEqual([
      ['alerts.triggered', 'unknown'],
      ['alerts.triggered', 'no_data'],
    ]);
  });

  it('any telemetry of the scope keeps it known for 24 hours after receipt, not after its event time', async () => {
    // Received now, timestamped 59 minutes ago: known until 24 hours after now.
    await send([{ type: 'turn', latency_ms: 100, timestamp: t(-59 * MINUTE) }]);
    const rule = await createRule({ metric: 'api_errors', operator: '<', threshold_value: 1 });
    await tickAt(DAY - SECOND);
    expect(await getRule(rule.id)).toMatchObject({ current_state: 'alert', current_value: 0 });
    await tickAt(DAY);
    expect((await getRule(rule.id)).current_state).toBe('no_data');
  });
});

// ---- windows -----------------------------------------------------------------------------

describe('window edges', () => {
  it.each(Object.entries(WINDOWS))('%s: an event exactly a window old is out, one second younger is in', async (window, length) => {
    const rule = await createRule({ window_duration: window, operator: '>=', threshold_value: 1 });
    await send([{ type: 'api_error' }]);
    expect(await getRule(rule.id)).toMatchObject({ current_state: 'alert', current_value: 1 });
    await tickAt(length - SECOND);
    expect(await getRule(rule.id)).toMatchObject({ current_state: 'alert', current_value: 1 });
    await tickAt(length);
    expect(await getRule(rule.id)).toMatchObject({ current_state: 'ok', current_value: 0, since: t(length) });
    const [, resolved] = await outbox(rule.id);
    expect(resolved?.body.alert).toMatchObject({ previous_state: 'alert', triggered_at: t(0), resolved_at: t(length) });
  });

  it.each(Object.entries(WINDOWS))('%s: a late event one second younger than the window counts at once, then leaves a second later', async (window, length) => {
    const rule = await createRule({ window_duration: window, operator: '>=', threshold_value: 1 });
    await send([{ type: 'call' }]);
    expect(rule.current_state).toBe('no_data');
    await send([{ type: 'api_error', timestamp: t(-length + SECOND) }]);
    // Evaluated as the batch committed: no tick needed.
    expect(await getRule(rule.id)).toMatchObject({ current_state: 'alert', current_value: 1, since: t(0) });
    expect((await outbox(rule.id))[0]?.body.alert.triggered_at).toBe(t(0));
    await tickAt(SECOND - 1);
    expect((await getRule(rule.id)).current_value).toBe(1);
    await tickAt(SECOND);
    expect(await getRule(rule.id)).toMatchObject({ current_state: 'ok', current_value: 0 });
  });

  it.each(['5m', '10m'] as const)('%s: a late event exactly a window old is accepted but counts for nothing', async (window) => {
    const rule = await createRule({ window_duration: window, operator: '>=', threshold_value: 1 });
    await send([{ type: 'api_error', timestamp: t(-WINDOWS[window]) }]);
    expect(await getRule(rule.id)).toMatchObject({ current_state: 'ok', current_value: 0 });
    expect(await outbox()).toEqual([]);
  });

  it('an event exactly 60 minutes old is rejected (it could never count) and nothing of its batch is recorded', async () => {
    const rule = await createRule({ window_duration: '60m', operator: '>=', threshold_value: 1 });
    const res = await server.request('POST', '/v1/telemetry/events', {
      body: { events: [{ type: 'api_error' }, { type: 'api_error', timestamp: t(-HOUR) }] },
    });
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual([expect.objectContaining({ field: 'events[1].timestamp' })]);
    expect(await getRule(rule.id)).toMatchObject({ current_state: 'no_data', current_value: null });
  });

  it('windows of 5, 10 and 60 minutes over the same events see 1, 2 and 3 of them', async () => {
    await send([
      { type: 'api_error', timestamp: t(-4 * MINUTE) },
      { type: 'api_error', timestamp: t(-9 * MINUTE) },
      { type: 'api_error', timestamp: t(-59 * MINUTE) },
    ]);
    const values: number[] = [];
    for (const window of Object.keys(WINDOWS)) values.push((await createRule({ name: window, window_duration: window })).current_value);
    expect(values).toEqual([1, 2, 3]);
  });

  it('an alert resolves on a timer tick as its events slide out, without new telemetry', async () => {
    const rule = await createRule({ operator: '>', threshold_value: 2 });
    await send(eventsFor('api_errors', 1));
    clock.set(START + MINUTE);
    await send(eventsFor('api_errors', 1));
    clock.set(START + 2 * MINUTE);
    await send(eventsFor('api_errors', 2));
    expect(await getRule(rule.id)).toMatchObject({ current_state: 'alert', current_value: 4, since: t(2 * MINUTE) });

    await tickAt(5 * MINUTE);
    expect(await getRule(rule.id)).toMatchObject({ current_state: 'alert', current_value: 3, last_evaluated_at: t(5 * MINUTE) });
    expect(await transitions(rule.id)).toEqual([['alerts.triggered', 'ok']]);
    await tickAt(6 * MINUTE);
    expect(await getRule(rule.id)).toMatchObject({ current_state: 'ok', current_value: 2, since: t(6 * MINUTE) });
    expect(await activeAlerts()).toEqual([]);
    const events = await outbox(rule.id);
    expect(events.map((e) => e.event_type)).toEqual(['alerts.triggered', 'alerts.resolved']);
    expect(events[1]!.body.alert).toMatchObject({ current_value: 2, triggered_at: t(2 * MINUTE), resolved_at: t(6 * MINUTE) });
  });

  it('a future event (up to 5 minutes ahead) counts only once the clock reaches it, then for a whole window', async () => {
    const rule = await createRule({ operator: '>=', threshold_value: 1 });
    await send([{ type: 'api_error', timestamp: t(2 * MINUTE) }]);
    // The scope is known now, but the event has not happened yet.
    expect(await getRule(rule.id)).toMatchObject({ current_state: 'ok', current_value: 0 });
    await tickAt(2 * MINUTE - SECOND);
    expect(await getRule(rule.id)).toMatchObject({ current_state: 'ok', current_value: 0 });
    await tickAt(2 * MINUTE);
    expect(await getRule(rule.id)).toMatchObject({ current_state: 'alert', current_value: 1, since: t(2 * MINUTE) });
    await tickAt(7 * MINUTE - SECOND);
    expect((await getRule(rule.id)).current_state).toBe('alert');
    await tickAt(7 * MINUTE);
    expect(await getRule(rule.id)).toMatchObject({ current_state: 'ok', current_value: 0 });
    expect(await transitions(rule.id)).toEqual([
      ['alerts.triggered', 'ok'],
      ['alerts.resolved', 'alert'],
    ]);
  });

  it('an event exactly 5 minutes ahead is accepted and counts then; one millisecond more is rejected', async () => {
    const rule = await createRule({ operator: '>=', threshold_value: 1 });
    const late = await server.request('POST', '/v1/telemetry/events', { body: { events: [{ type: 'api_error', timestamp: t(5 * MINUTE + 1) }] } });
    expect(late.status).toBe(400);
    expect(late.body.errors).toEqual([expect.objectContaining({ field: 'events[0].timestamp' })]);
    await send([{ type: 'api_error', timestamp: t(5 * MINUTE) }]);
    expect((await getRule(rule.id)).current_value).toBe(0);
    await tickAt(5 * MINUTE);
    expect(await getRule(rule.id)).toMatchObject({ current_state: 'alert', current_value: 1 });
  });
});

// ---- scoping -----------------------------------------------------------------------------

describe('project scoping', () => {
  it('an account-wide rule counts every project and events without one; a project rule only its own project', async () => {
    const account = await createRule({ name: 'account', operator: '>', threshold_value: 100 });
    const a = await createRule({ name: 'a', project_id: 'proj_a', operator: '>', threshold_value: 100 });
    const b = await createRule({ name: 'b', project_id: 'proj_b', operator: '>', threshold_value: 100 });
    const c = await createRule({ name: 'c', project_id: 'proj_c', operator: '>', threshold_value: 100 });
    await send([...eventsFor('api_errors', 2, { project_id: 'proj_a' }), ...eventsFor('api_errors', 3, { project_id: 'proj_b' }), ...eventsFor('api_errors', 1)]);
    await send(eventsFor('api_errors', 4, { project_id: null }));
    const values = await Promise.all([account, a, b, c].map(async (r) => (await getRule(r.id)).current_value));
    expect(values).toEqual([10, 2, 3, null]);
  });

  it("a project rule fires only on its own project's events, the account-wide rule on any project's", async () => {
    const account = await createRule({ name: 'account' });
    const a = await createRule({ name: 'a', project_id: 'proj_a' });
    await send(eventsFor('api_errors', 3, { project_id: 'proj_b' }));
    expect((await getRule(account.id)).current_state).toBe('alert');
    expect((await getRule(a.id)).current_state).toBe('no_data');
    await send(eventsFor('api_errors', 1, { project_id: 'proj_a' }));
    expect(await getRule(a.id)).toMatchObject({ current_state: 'ok', current_value: 1 });
    expect(await getRule(account.id)).toMatchObject({ current_state: 'alert', current_value: 4 });
    expect((await outbox()).map((e) => e.rule_id)).toEqual([account.id]);
    expect((await activeAlerts()).map((x) => x.alert_rule_id)).toEqual([account.id]);
  });

  it('an account-wide latency percentile merges the turns of all projects', async () => {
    const account = await createRule({ name: 'account', metric: 'turn_latency_p50', operator: '>', threshold_value: 1000 });
    const a = await createRule({ name: 'a', metric: 'turn_latency_p50', project_id: 'proj_a', operator: '>', threshold_value: 1000 });
    const b = await createRule({ name: 'b', metric: 'turn_latency_p50', project_id: 'proj_b', operator: '>', threshold_value: 1000 });
    await send([...eventsFor('turn_latency_p50', 10, { project_id: 'proj_a' }, 100), ...eventsFor('turn_latency_p50', 30, { project_id: 'proj_b' }, 3000)]);
    const [ra, rb, racc] = [await getRule(a.id), await getRule(b.id), await getRule(account.id)];
    expect([ra.current_state, rb.current_state, racc.current_state]).toEqual(['ok', 'alert', 'alert']);
    expectWithin1Percent(ra.current_value, 100);
    expectWithin1Percent(rb.current_value, 3000);
    expectWithin1Percent(racc.current_value, 3000);
  });

  it("another account's telemetry never reaches this account's rules, and its events are its own", async () => {
    const globex = await server.newKey('globex');
    const ours = await createRule({ name: 'ours' });
    const theirs = await createRule({ name: 'theirs' }, globex);
    await send(eventsFor('api_errors', 10), globex);
    expect((await getRule(ours.id)).current_state).toBe('no_data');
    expect((await getRule(theirs.id, globex)).current_state).toBe('alert');
    expect(await activeAlerts()).toEqual([]);
    expect((await activeAlerts('', globex)).map((x) => x.alert_rule_id)).toEqual([theirs.id]);
    const events = await outbox();
    expect(events.map((e) => e.rule_id)).toEqual([theirs.id]);
    await send(eventsFor('api_errors', 3));
    const after = await outbox();
    expect(after.map((e) => e.rule_id)).toEqual([theirs.id, ours.id]);
    expect(after[0]!.account_id).not.toBe(after[1]!.account_id);
  });
});

// ---- disabled, edited and deleted rules --------------------------------------------------

describe('disabled rules', () => {
  it('a rule created disabled is unknown with a null value, never evaluated, never an active alert, and emits nothing', async () => {
    await send(eventsFor('api_errors', 10));
    const rule = await createRule({ operator: '>', threshold_value: 0, enabled: false });
    expect(rule).toMatchObject({ enabled: false, current_state: 'unknown', current_value: null, since: t(0), last_evaluated_at: null });
    clock.set(START + MINUTE);
    await send(eventsFor('api_errors', 10));
    await tickAt(2 * MINUTE);
    expect(await getRule(rule.id)).toEqual(rule);
    expect(await activeAlerts()).toEqual([]);
    expect(await ruleNames('?state=unknown')).toEqual(['API errors']);
    expect(await outbox()).toEqual([]);
  });

  it('disabling a firing rule makes it unknown with a null value and no event, and takes it out of active alerts', async () => {
    const rule = await createRule();
    await send(eventsFor('api_errors', 3));
    expect((await activeAlerts()).length).toBe(1);
    clock.set(START + MINUTE);
    const disabled = await patchRule(rule.id, { enabled: false });
    expect(disabled).toMatchObject({ enabled: false, current_state: 'unknown', current_value: null, since: t(MINUTE), last_evaluated_at: t(0) });
    expect(await activeAlerts()).toEqual([]);
    await send(eventsFor('api_errors', 3));
    await tickAt(10 * MINUTE);
    expect(await getRule(rule.id)).toMatchObject({ current_state: 'unknown', current_value: null, since: t(MINUTE), last_evaluated_at: t(0) });
    expect(await transitions(rule.id)).toEqual([['alerts.triggered', 'no_data']]);
  });

  it('re-enabling evaluates at once: a breach fires from unknown in the PATCH answer', async () => {
    const rule = await createRule({ enabled: false });
    await send(eventsFor('api_errors', 3));
    clock.set(START + 30 * SECOND);
    const enabled = await patchRule(rule.id, { enabled: true });
    expect(enabled).toMatchObject({ enabled: true, current_state: 'alert', current_value: 3, since: t(30 * SECOND), last_evaluated_at: t(30 * SECOND) });
    expect(await transitions(rule.id)).toEqual([['alerts.triggered', 'unknown']]);
    expect((await activeAlerts()).map((a) => [a.alert_rule_id, a.since])).toEqual([[rule.id, t(30 * SECOND)]]);
  });

  it('re-enabling without a breach is ok (or no_data) at once and emits nothing', async () => {
    const quiet = await createRule({ name: 'quiet', enabled: false });
    const other = await createRule({ name: 'other', enabled: false, project_id: 'proj_none' });
    await send(eventsFor('api_errors', 1));
    expect(await patchRule(quiet.id, { enabled: true })).toMatchObject({ current_state: 'ok', current_value: 1 });
    expect(await patchRule(other.id, { enabled: true })).toMatchObject({ current_state: 'no_data', current_value: null });
    expect(await outbox()).toEqual([]);
  });

  it('editing a disabled rule keeps it unknown and unevaluated, with the same since', async () => {
    await send(eventsFor('api_errors', 3));
    const rule = await createRule({ enabled: false });
    clock.set(START + MINUTE);
    const patched = await patchRule(rule.id, { threshold_value: 0, name: 'edited' });
    expect(patched).toMatchObject({ name: 'edited', current_state: 'unknown', current_value: null, since: t(0), last_evaluated_at: null });
    expect(await outbox()).toEqual([]);
  });

  it('a firing rule disabled and enabled again while still breached fires again, from unknown', async () => {
    const rule = await createRule();
    await send(eventsFor('api_errors', 3));
    await patchRule(rule.id, { enabled: false });
    clock.set(START + SECOND);
    expect(await patchRule(rule.id, { enabled: true })).toMatchObject({ current_state: 'alert', since: t(SECOND) });
    expect(await transitions(rule.id)).toEqual([
      ['alerts.triggered', 'no_data'],
      ['alerts.triggered', 'unknown'],
    ]);
  });
});

describe('rules edited while firing', () => {
  async function firingRule(overrides: Record<string, unknown> = {}) {
    const rule = await createRule(overrides);
    await send(eventsFor('api_errors', 5));
    expect((await getRule(rule.id)).current_state).toBe('alert');
    clock.set(START + MINUTE);
    return rule;
  }

  it('raising the threshold above the value resolves it in the PATCH answer with one alerts.resolved', async () => {
    const rule = await firingRule();
    const patched = await patchRule(rule.id, { threshold_value: 10 });
    expect(patched).toMatchObject({ threshold_value: 10, current_state: 'ok', current_value: 5, since: t(MINUTE), last_evaluated_at: t(MINUTE) });
    const events = await outbox(rule.id);
    expect(events.map((e) => e.event_type)).toEqual(['alerts.triggered', 'alerts.resolved']);
    expect(events[1]!.body.alert).toMatchObject({ threshold_value: 10, current_value: 5, triggered_at: t(0), resolved_at: t(MINUTE) });
    expect(await activeAlerts()).toEqual([]);
  });

  it('lowering the threshold of an ok rule below the value fires it at once', async () => {
    const rule = await createRule({ threshold_value: 10 });
    await send(eventsFor('api_errors', 5));
    expect((await getRule(rule.id)).current_state).toBe('ok');
    expect(await patchRule(rule.id, { threshold_value: 4 })).toMatchObject({ current_state: 'alert', current_value: 5 });
    expect(await transitions(rule.id)).toEqual([['alerts.triggered', 'ok']]);
  });

  it('changing the metric to one without data moves it to no_data without an event', async () => {
    const rule = await firingRule();
    const patched = await patchRule(rule.id, { metric: 'turn_latency_p95' });
    expect(patched).toMatchObject({ metric: 'turn_latency_p95', current_state: 'no_data', current_value: null, since: t(MINUTE) });
    expect(await transitions(rule.id)).toEqual([['alerts.triggered', 'no_data']]);
    expect(await activeAlerts()).toEqual([]);
  });

  it('changing the project to one never seen moves it to no_data without an event', async () => {
    const rule = await firingRule();
    expect(await patchRule(rule.id, { project_id: 'proj_new' })).toMatchObject({ current_state: 'no_data', current_value: null });
    expect(await transitions(rule.id)).toEqual([['alerts.triggered', 'no_data']]);
  });

  it('changing the operator so the same value no longer breaches resolves it', async () => {
    const rule = await firingRule();
    expect(await patchRule(rule.id, { operator: '<' })).toMatchObject({ current_state: 'ok', current_value: 5 });
    expect((await outbox(rule.id)).map((e) => e.event_type)).toEqual(['alerts.triggered', 'alerts.resolved']);
  });

  it('renaming a firing rule keeps it firing with the same since and no event; later events carry the new name', async () => {
    const rule = await firingRule();
    const renamed = await patchRule(rule.id, { name: 'Renamed' });
    expect(renamed).toMatchObject({ name: 'Renamed', current_state: 'alert', since: t(0), last_evaluated_at: t(MINUTE) });
    expect((await outbox(rule.id)).length).toBe(1);
    await tickAt(5 * MINUTE);
    const events = await outbox(rule.id);
    expect(events.map((e) => [e.event_type, e.body.alert.name])).toEqual([
      ['alerts.triggered', 'API errors'],
      ['alerts.resolved', 'Renamed'],
    ]);
  });

  it('widening the window picks up older events at once', async () => {
    await send([{ type: 'api_error', timestamp: t(-30 * MINUTE) }, { type: 'api_error', timestamp: t(-20 * MINUTE) }, { type: 'api_error' }]);
    const rule = await createRule();
    expect(rule).toMatchObject({ current_state: 'ok', current_value: 1 });
    expect(await patchRule(rule.id, { window_duration: '60m' })).toMatchObject({ current_state: 'alert', current_value: 3 });
    expect(await patchRule(rule.id, { window_duration: '10m' })).toMatchObject({ current_state: 'ok', current_value: 1 });
    expect((await outbox(rule.id)).map((e) => e.event_type)).toEqual(['alerts.triggered', 'alerts.resolved']);
  });
});

describe('deleted rules', () => {
  it('a deleted rule emits nothing more, whatever its data does', async () => {
    const rule = await createRule();
    const kept = await createRule({ name: 'kept' });
    await send(eventsFor('api_errors', 3));
    expect((await outbox()).length).toBe(2);
    const res = await server.request('DELETE', `/v1/alert-rules/${rule.id}`);
    expect(res.status).toBe(204);

    await tickAt(5 * MINUTE);
    await send(eventsFor('api_errors', 3));
    await tickAt(10 * MINUTE);
    expect(await transitions(rule.id)).toEqual([['alerts.triggered', 'no_data']]);
    expect(await transitions(kept.id)).toEqual([
      ['alerts.triggered', 'no_data'],
      ['alerts.resolved', 'alert'],
      ['alerts.triggered', 'ok'],
      ['alerts.resolved', 'alert'],
    ]);
    expect((await activeAlerts()).map((a) => a.alert_rule_id)).toEqual([]);
  });
});

// ---- timestamps --------------------------------------------------------------------------

describe('since and last_evaluated_at', () => {
  it('since changes only when the state changes; last_evaluated_at moves on every evaluation', async () => {
    const rule = await createRule({ operator: '>', threshold_value: 2 });
    expect(rule).toMatchObject({ current_state: 'no_data', since: t(0), last_evaluated_at: t(0) });
    const at = async (offset: number) => {
      const r = await getRule(rule.id);
      return [r.current_state, r.current_value, r.since, r.last_evaluated_at, offset];
    };

    clock.set(START + 10 * SECOND);
    await send(eventsFor('api_errors', 1));
    expect(await at(10)).toEqual(['ok', 1, t(10 * SECOND), t(10 * SECOND), 10]);

    clock.set(START + 20 * SECOND);
    await send(eventsFor('api_errors', 1));
    expect(await at(20)).toEqual(['ok', 2, t(10 * SECOND), t(20 * SECOND), 20]);

    await tickAt(30 * SECOND);
    expect(await at(30)).toEqual(['ok', 2, t(10 * SECOND), t(30 * SECOND), 30]);

    clock.set(START + 40 * SECOND);
    await patchRule(rule.id, { name: 'renamed' });
    expect(await at(40)).toEqual(['ok', 2, t(10 * SECOND), t(40 * SECOND), 40]);

    clock.set(START + 50 * SECOND);
    await send(eventsFor('api_errors', 1));
    expect(await at(50)).toEqual(['alert', 3, t(50 * SECOND), t(50 * SECOND), 50]);

    await tickAt(60 * SECOND);
    expect(await at(60)).toEqual(['alert', 3, t(50 * SECOND), t(60 * SECOND), 60]);
    expect((await activeAlerts()).map((a) => [a.since, a.last_evaluated_at, a.current_value])).toEqual([[t(50 * SECOND), t(60 * SECOND), 3]]);

    clock.set(START + 70 * SECOND);
    await send(eventsFor('api_errors', 1));
    expect(await at(70)).toEqual(['alert', 4, t(50 * SECOND), t(70 * SECOND), 70]);
    expect((await outbox(rule.id)).length).toBe(1);
  });
});

// ---- the API views of states -------------------------------------------------------------

describe('GET /v1/alerts and ?state= reflect the evaluated states', () => {
  it('each state filter returns exactly the rules in that state, and only alert rules are active alerts', async () => {
    await send([...eventsFor('api_errors', 3, { project_id: 'proj_a' }), { type: 'call', project_id: 'proj_b' }]);
    await createRule({ name: 'firing', project_id: 'proj_a' });
    await createRule({ name: 'fine', project_id: 'proj_b' });
    await createRule({ name: 'no data', project_id: 'proj_c' });
    await createRule({ name: 'disabled', project_id: 'proj_a', enabled: false });
    await createRule({ name: 'slow', project_id: 'proj_b', metric: 'turn_latency_p95' });

    expect(await ruleNames('?state=alert')).toEqual(['firing']);
    expect(await ruleNames('?state=ok')).toEqual(['fine']);
    expect(await ruleNames('?state=no_data')).toEqual(['no data', 'slow']);
    expect(await ruleNames('?state=unknown')).toEqual(['disabled']);
    expect(await ruleNames('?state=alert&project_id=proj_b')).toEqual([]);
    expect(await ruleNames('?state=no_data&metric=turn_latency_p95')).toEqual(['slow']);

    const active = await activeAlerts();
    expect(active).toEqual([
      {
        alert_rule_id: expect.stringMatching(/^ar_/),
        name: 'firing',
        project_id: 'proj_a',
        metric: 'api_errors',
        operator: '>',
        threshold_value: 2,
        window_duration: '5m',
        since: t(0),
        last_evaluated_at: t(0),
        current_value: 3,
      },
    ]);
  });

  it('active alerts follow the states as they change, with the project_id and metric filters', async () => {
    const errors = await createRule({ name: 'errors', project_id: 'proj_a' });
    const crashes = await createRule({ name: 'crashes', project_id: 'proj_b', metric: 'call_crashes', operator: '>=', threshold_value: 1 });
    const names = async (query = '') => (await activeAlerts(query)).map((a) => a.name);
    expect(await names()).toEqual([]);

    await send(eventsFor('api_errors', 3, { project_id: 'proj_a' }));
    expect(await names()).toEqual(['errors']);
    clock.set(START + MINUTE);
    await send([{ type: 'call_crash', project_id: 'proj_b' }]);
    expect(await names()).toEqual(['errors', 'crashes']);
    expect(await names('?project_id=proj_b')).toEqual(['crashes']);
    expect(await names('?metric=api_errors')).toEqual(['errors']);
    expect(await names('?metric=call_volume')).toEqual([]);
    expect(await ruleNames('?state=alert')).toEqual(['errors', 'crashes']);

    await tickAt(5 * MINUTE);
    expect(await names()).toEqual(['crashes']);
    expect(await ruleNames('?state=ok')).toEqual(['errors']);
    expect((await getRule(errors.id)).current_state).toBe('ok');
    await tickAt(6 * MINUTE);
    expect(await names()).toEqual([]);
    expect(await ruleNames('?state=ok')).toEqual(['errors', 'crashes']);
    expect((await getRule(crashes.id)).current_value).toBe(0);
  });
});

// ---- the outbox --------------------------------------------------------------------------

describe('outbox', () => {
  it('writes one alerts.triggered per transition into alert (from unknown, ok, no_data), one alerts.resolved per alert → ok, nothing otherwise', async () => {
    await send(eventsFor('api_errors', 3));
    const rule = await createRule(); // unknown → alert
    await send(eventsFor('api_errors', 2)); // alert → alert
    await tickAt(MINUTE); // alert → alert
    await tickAt(5 * MINUTE); // alert → ok
    await tickAt(6 * MINUTE); // ok → ok
    clock.set(START + 7 * MINUTE);
    await send(eventsFor('api_errors', 3)); // ok → alert
    await tickAt(7 * MINUTE + DAY); // alert → no_data
    clock.set(START + 7 * MINUTE + DAY + SECOND);
    await send(eventsFor('api_errors', 4)); // no_data → alert
    clock.set(START + 8 * MINUTE + DAY);
    await patchRule(rule.id, { metric: 'turn_latency_p50' }); // alert → no_data

    const events = await outbox(rule.id);
    expect(events.map((e) => [e.event_type, e.body.alert.previous_state, e.body.alert.current_value])).toEqual([
      ['alerts.triggered', 'unknown', 3],
      ['alerts.resolved', 'alert', 0],
      ['alerts.triggered', 'ok', 3],
      ['alerts.triggered', 'no_data', 4],
    ]);
    expect(events.map((e) => e.body.alert.triggered_at)).toEqual([t(0), t(0), t(7 * MINUTE), t(7 * MINUTE + DAY + SECOND)]);
    expect(events[1]!.body.alert.resolved_at).toBe(t(5 * MINUTE));
  });

  it('payloads carry the rule, the value, the previous state and the times, and validate as published WebhookEvents', async () => {
    const rule = await createRule({ name: 'Crashes in proj_a', project_id: 'proj_a', metric: 'call_crashes', operator: '>=', threshold_value: 2 });
    clock.set(START + 15 * SECOND);
    await send(eventsFor('call_crashes', 2, { project_id: 'proj_a' }));
    await tickAt(15 * SECOND + 5 * MINUTE);
    const [triggered, resolved] = await outbox(rule.id);
    const alert = {
      id: rule.id,
      name: 'Crashes in proj_a',
      project_id: 'proj_a',
      metric: 'call_crashes',
      operator: '>=',
      threshold_value: 2,
    };
    expect(triggered!.event_type).toBe('alerts.triggered');
    expect(triggered!.body).toMatchObject({
      event_type: 'alerts.triggered',
      alert: { ...alert, current_value: 2, previous_state: 'no_data', triggered_at: t(15 * SECOND) },
    });
    expect(resolved!.event_type).toBe('alerts.resolved');
    expect(resolved!.body).toMatchObject({
      event_type: 'alerts.resolved',
      alert: { ...alert, current_value: 0, previous_state: 'alert', triggered_at: t(15 * SECOND), resolved_at: t(15 * SECOND + 5 * MINUTE) },
    });
    for (const event of [triggered!, resolved!]) {
      expect(validateComponent('WebhookEvent', event.body)).toEqual([]);
      expect(event.body.id ?? event.id).toBe(event.id);
    }
  });

  it('an account-wide rule reports project_id null', async () => {
    const rule = await createRule();
    await send(eventsFor('api_errors', 3, { project_id: 'proj_a' }));
    const [event] = await outbox(rule.id);
    expect(event!.body.alert.project_id).toBeNull();
  });

  it('every event has its own evt_ id, across rules and transitions', async () => {
    const rules: any[] = [];
    for (let i = 0; i < 10; i++) rules.push(await createRule({ name: `rule ${i}`, threshold_value: i }));
    for (let round = 0; round < 3; round++) {
      clock.set(START + round * 10 * MINUTE);
      await send(eventsFor('api_errors', 10));
      await tickAt(round * 10 * MINUTE + 5 * MINUTE);
    }
    const events = await outbox();
    expect(events.length).toBe(60);
    expect(new Set(events.map((e) => e.id)).size).toBe(60);
    for (const rule of rules) {
      expect((await transitions(rule.id)).map(([type]) => type)).toEqual([
        'alerts.triggered',
        'alerts.resolved',
        'alerts.triggered',
        'alerts.resolved',
        'alerts.triggered',
        'alerts.resolved',
      ]);
    }
  });

  it('a breach is committed to the outbox before the 202 of the batch that caused it', async () => {
    const rule = await createRule();
    await send(eventsFor('api_errors', 3));
    // No tick and no other request in between: the event is already durable.
    const rows = await server.service.store.alertEvents.list();
    expect(rows.map((r) => [r.rule_id, r.event_type])).toEqual([[rule.id, 'alerts.triggered']]);
  });
});
