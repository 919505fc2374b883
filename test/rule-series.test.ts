import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TelemetryHistory, TelemetryRollupRow } from '../src/domain/ports/telemetry-history.js';
import type { SeriesPlan } from '../src/domain/rule-series-service.js';
import type { TelemetryEvent } from '../src/domain/telemetry.js';
import { deltasOf, encodeDeltas, ScopeAggregates, type SecondDelta } from '../src/engine/aggregates.js';
import { measure, stateOf } from '../src/engine/evaluate.js';
import { computeSeries } from '../src/engine/series.js';
import { onPostgres } from './helpers/database.js';
import { snapshotDatabase, startTestServer, testClock, type TestServer } from './helpers/server.js';

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

const iso = (ms: number) => new Date(ms).toISOString();

interface TelemetryInput {
  type: string;
  project_id?: string | null;
  timestamp?: string;
  latency_ms?: number;
}

interface Point {
  at: string;
  value: number | null;
  state: string;
}

interface Transition {
  at: string;
  from_state: string;
  to_state: string;
  value: number | null;
  event_type: string | null;
}

/** A deterministic generator (mulberry32), so a failure replays the same telemetry. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function send(events: TelemetryInput[], key?: string): Promise<void> {
  const res = await server.request('POST', '/v1/telemetry/events', { body: { events }, key });
  expect(res.status, res.text).toBe(202);
}

function ruleBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { name: 'API errors', project_id: null, metric: 'api_errors', operator: '>', threshold_value: 2, window_duration: '5m', ...overrides };
}

async function createRule(overrides: Record<string, unknown> = {}, key?: string): Promise<any> {
  const res = await server.request('POST', '/v1/alert-rules', { body: ruleBody(overrides), key });
  expect(res.status, res.text).toBe(201);
  return res.body;
}

async function series(ruleId: string, query: Record<string, string> = {}, key?: string) {
  const qs = new URLSearchParams(query).toString();
  return server.request('GET', `/v1/alert-rules/${ruleId}/series${qs ? `?${qs}` : ''}`, { key });
}

async function okSeries(ruleId: string, query: Record<string, string> = {}, key?: string): Promise<any> {
  const res = await series(ruleId, query, key);
  expect(res.status, res.text).toBe(200);
  return res.body;
}

async function preview(body: Record<string, unknown>, key?: string) {
  return server.request('POST', '/v1/alert-rules/preview', { body, key });
}

async function accountIdOf(key: string): Promise<string> {
  return (await server.service.apiKeys.authenticate(key))!;
}

/** A telemetry_seconds or telemetry_minutes row of a scope, written directly (as the roll-up would). */
async function insertRow(
  table: 'telemetry_seconds' | 'telemetry_minutes',
  accountId: string,
  second: number,
  counts: { call?: number; api_error?: number },
  latencies: number[] = [],
  project = '',
): Promise<void> {
  // Latencies below 256 ms have a bin each, equal to the latency.
  const bins = new Map<number, number>();
  for (const l of latencies) bins.set(l, (bins.get(l) ?? 0) + 1);
  const pairs = [...bins].sort((a, b) => a[0] - b[0]).flat();
  await server.service.store.db
    .insertInto(table)
    .values({
      account_id: accountId,
      project_key: project,
      second,
      call: counts.call ?? 0,
      call_crash: 0,
      turn: latencies.length,
      api_error: counts.api_error ?? 0,
      function_error: 0,
      latencies: JSON.stringify(pairs),
    })
    .execute();
}

// ---- agreement with the live evaluator ----------------------------------------------------

describe('agreement with the live evaluator', () => {
  it('a preview over recorded telemetry has exactly the live transitions, and a series the live values', async () => {
    const STEP = 30 * SECOND;
    const STEPS = 60;
    const specs = [
      ruleBody({ name: 'p95 of proj_a', project_id: 'proj_a', metric: 'turn_latency_p95', operator: '>', threshold_value: 1500, window_duration: '5m' }),
      ruleBody({ name: 'p50 of the account', metric: 'turn_latency_p50', operator: '>=', threshold_value: 900, window_duration: '10m' }),
      ruleBody({ name: 'api errors', metric: 'api_errors', operator: '>=', threshold_value: 4, window_duration: '5m' }),
      ruleBody({ name: 'few calls on proj_b', project_id: 'proj_b', metric: 'call_volume', operator: '<', threshold_value: 3, window_duration: '5m' }),
    ];
    const rules: string[] = [];
    const live = new Map<string, Point[]>();
    const record = async (at: number) => {
      for (const id of rules) {
        const rule = (await server.request('GET', `/v1/alert-rules/${id}`)).body;
        live.get(id)!.push({ at: iso(at), value: rule.current_value, state: rule.current_state });
      }
    };
    for (const spec of specs) {
      const id = (await createRule(spec)).id as string;
      rules.push(id);
      live.set(id, []);
    }
    await record(START);

    // Phases of six minutes: fast turns, slow turns, silence (windows empty out: no_data).
    const random = rng(7);
    for (let i = 1; i <= STEPS; i++) {
      const now = START + i * STEP;
      clock.set(now);
      const phase = Math.floor(i / 12) % 3;
      const events: TelemetryInput[] = [];
      // Each event within the step just ended: it counts from this evaluation on, live and replayed alike.
      const at = () => iso(now - Math.floor(random() * 29) * SECOND);
      if (phase !== 2) {
        for (let k = 0; k < 4; k++) {
          const latency = phase === 0 ? 500 + Math.floor(random() * 500) : 1600 + Math.floor(random() * 1500);
          events.push({ type: 'turn', project_id: k % 2 === 0 ? 'proj_a' : null, latency_ms: latency, timestamp: at() });
        }
        if (random() < 0.7) events.push({ type: 'call', project_id: 'proj_b', timestamp: at() });
      }
      if ((i >= 10 && i <= 15) || (i >= 40 && i <= 43)) events.push({ type: 'api_error', project_id: 'proj_c', timestamp: at() });
      if (events.length > 0) await send(events);
      await server.service.engine.tick();
      await record(now);
    }

    const range = { from: iso(START - STEP), to: iso(START + STEPS * STEP), step: '30s' };
    let transitionsSeen = 0;
    const statesSeen = new Set<string>();
    for (const [index, id] of rules.entries()) {
      const points = live.get(id)!;
      // What the live rule went through, as the test saw it after each evaluation.
      const liveTransitions: Omit<Transition, 'event_type'>[] = [];
      let previous = 'unknown';
      for (const p of points) {
        statesSeen.add(p.state);
        if (p.state !== previous) liveTransitions.push({ at: p.at, from_state: previous, to_state: p.state, value: p.value });
        previous = p.state;
      }
      const res = await preview({ ...specs[index], ...range });
      expect(res.status, res.text).toBe(200);
      const transitions = res.body.transitions as Transition[];
      expect(transitions.map(({ event_type: _type, ...t }) => t), specs[index]!.name as string).toEqual(liveTransitions);
      expect(res.body.points).toEqual(points);

      // The history the evaluator wrote, with the events it sent.
      const history = await server.service.store.db
        .selectFrom('alert_rule_history')
        .select(['at', 'from_state', 'to_state', 'value', 'event_type'])
        .where('rule_id', '=', id)
        .orderBy('seq')
        .execute();
      expect(transitions).toEqual(history.map((h) => ({ ...h, value: h.value === null ? null : Number(h.value) })));
      const events = (await server.service.store.alertEvents.list()).filter((e) => e.rule_id === id);
      expect(transitions.flatMap((t) => (t.event_type === null ? [] : [t.event_type]))).toEqual(events.map((e) => e.event_type));
      expect(res.body.triggered_count).toBe(events.filter((e) => e.event_type === 'alerts.triggered').length);
      transitionsSeen += transitions.length;

      // The stored rule's series: the same points.
      expect((await okSeries(id, range)).points).toEqual(points);
    }
    // The replay is only a proof if it went through every state, several times.
    expect(statesSeen).toEqual(new Set(['ok', 'alert', 'no_data']));
    expect(transitionsSeen).toBeGreaterThanOrEqual(12);
  });

  it('gives the same series from unrolled batches as from the roll-up tables', async () => {
    const rule = await createRule({ metric: 'turn_latency_p95', window_duration: '10m', threshold_value: 1000 });
    const calls = await createRule({ name: 'calls', metric: 'call_volume', project_id: 'proj_a', window_duration: '5m' });
    const random = rng(3);
    for (let i = 1; i <= 40; i++) {
      clock.set(START + i * 20 * SECOND);
      const events: TelemetryInput[] = [];
      for (let k = 0; k < 3; k++) events.push({ type: 'turn', project_id: k === 0 ? 'proj_a' : null, latency_ms: 200 + Math.floor(random() * 2000) });
      events.push({ type: 'call', project_id: i % 3 === 0 ? 'proj_a' : 'proj_b' });
      await send(events);
    }
    const range = { from: iso(START), to: iso(clock.now()), step: '20s' };
    const before = [await okSeries(rule.id, range), await okSeries(calls.id, range)];
    await server.service.rollups.rollNow();
    const progress = await server.service.store.db.selectFrom('telemetry_rollup_progress').select((eb) => eb.fn.max('rolled_seq').as('rolled')).executeTakeFirst();
    expect(Number(progress?.rolled)).toBeGreaterThan(0);
    const after = [await okSeries(rule.id, range), await okSeries(calls.id, range)];
    expect(after).toEqual(before);
    expect(before[0].points.filter((p: Point) => p.value !== null).length).toBe(40);
    expect(before[1].points.at(-1).value).toBeGreaterThan(0);
  });
});

// ---- the computation, against the evaluator one point at a time ----------------------------

describe('the computation', () => {
  const NOW = START;
  const CUTOFF = (NOW - 2 * HOUR) / 1000;
  /** Where stored telemetry is: per second after the cutoff, else in the minute row ending at or after it. */
  const placementOf = (second: number) => (second > CUTOFF ? second : Math.ceil(second / 60) * 60);

  /** Four hours of telemetry of two projects and none, in batches of 20 seconds. */
  function batches(): { receivedAt: number; deltas: SecondDelta[] }[] {
    const random = rng(11);
    const out: { receivedAt: number; deltas: SecondDelta[] }[] = [];
    for (let t = NOW - 4 * HOUR; t < NOW; t += 20 * SECOND) {
      // Quiet stretches, so latency windows empty out and counts fall to 0.
      if (Math.floor(t / (17 * MINUTE)) % 4 === 3) continue;
      const events: TelemetryEvent[] = [];
      for (let k = 0; k < 6; k++) {
        const project = [null, 'p1', 'p2'][k % 3]!;
        const time = t + Math.floor(random() * 20 * SECOND);
        events.push({ type: 'turn', project_id: project, time, latency_ms: Math.floor(random() * (random() < 0.1 ? 5000 : 900)) });
        if (random() < 0.4) events.push({ type: 'api_error', project_id: project, time, latency_ms: null });
      }
      out.push({ receivedAt: t + 20 * SECOND, deltas: deltasOf(events) });
    }
    return out;
  }

  /** The batches as the roll-up stores them (the scope's deltas summed per placement), or kept as batches. */
  function historyOf(all: ReturnType<typeof batches>, project: string | null, rolled: (index: number) => boolean): TelemetryHistory {
    const rows = new Map<number, { counts: Record<string, number>; bins: Map<number, number> }>();
    const history: TelemetryHistory = { minutes: [], seconds: [], batches: [], lastSeenSecond: NOW / 1000 - 5 * HOUR / 1000 };
    all.forEach((batch, index) => {
      if (!rolled(index)) {
        history.batches.push({ received_at: batch.receivedAt, deltas: encodeDeltas(batch.deltas) });
        return;
      }
      for (const d of batch.deltas) {
        if (project !== null && d.project !== project) continue;
        const at = placementOf(d.second);
        let row = rows.get(at);
        if (!row) rows.set(at, (row = { counts: { call: 0, call_crash: 0, turn: 0, api_error: 0, function_error: 0 }, bins: new Map() }));
        for (const [c, n] of Object.entries(d.counts)) row.counts[c]! += n;
        for (const [bin, n] of d.latencies) row.bins.set(bin, (row.bins.get(bin) ?? 0) + n);
      }
    });
    for (const [second, row] of [...rows].sort((a, b) => a[0] - b[0])) {
      const stored = { second, ...row.counts, latencies: JSON.stringify([...row.bins].sort((a, b) => a[0] - b[0]).flat()) } as TelemetryRollupRow;
      (second <= CUTOFF ? history.minutes : history.seconds).push(stored);
    }
    return history;
  }

  /** The evaluator at each point: a scope holding every placed second of its window, measured there. */
  function reference(all: ReturnType<typeof batches>, plan: SeriesPlan): Point[] {
    const project = plan.condition.project_id;
    const placed = all.flatMap((b) => b.deltas.filter((d) => project === null || d.project === project).map((d) => ({ ...d, second: placementOf(d.second) })));
    return Array.from({ length: plan.count }, (_, i) => {
      const at = plan.firstAt + i * plan.stepMs;
      const scope = new ScopeAggregates(Math.floor(at / 1000), at);
      for (const d of placed) if (d.second <= Math.floor(at / 1000)) scope.add(d);
      const value = measure(plan.condition, scope, at);
      return { at: at as unknown as string, value, state: stateOf(value, plan.condition) };
    });
  }

  const cases: [string, SeriesPlan][] = [
    [
      'p95 of the account over 5m, every 7 s within the per-second range, off the second',
      { condition: { project_id: null, metric: 'turn_latency_p95', operator: '>', threshold_value: 1500, window_duration: '5m' }, firstAt: NOW - 40 * MINUTE + 500, stepMs: 7000, count: 300, cutoffSecond: CUTOFF },
    ],
    [
      'api errors of p1 over 10m, every 45 s across the cutoff',
      { condition: { project_id: 'p1', metric: 'api_errors', operator: '>=', threshold_value: 12, window_duration: '10m' }, firstAt: NOW - 3 * HOUR, stepMs: 45_000, count: 240, cutoffSecond: CUTOFF },
    ],
    [
      'p50 of p2 over 60m, every minute across the cutoff',
      { condition: { project_id: 'p2', metric: 'turn_latency_p50', operator: '<', threshold_value: 500, window_duration: '60m' }, firstAt: NOW - 3 * HOUR, stepMs: 60_000, count: 180, cutoffSecond: CUTOFF },
    ],
  ];

  for (const [name, plan] of cases) {
    it(`matches the evaluator point by point, from rows, from batches or both: ${name}`, () => {
      const all = batches();
      const expected = reference(all, plan);
      expect(new Set(expected.map((p) => p.state)).size, 'the case crosses states').toBeGreaterThan(1);
      for (const rolled of [() => true, () => false, (i: number) => i % 3 !== 0]) {
        const { points, transitions } = computeSeries(plan, historyOf(all, plan.condition.project_id, rolled));
        expect(points).toEqual(expected);
        expect(transitions.length).toBe(expected.filter((p, i) => p.state !== (i === 0 ? 'unknown' : expected[i - 1]!.state)).length);
      }
    });
  }
});

// ---- resolution ----------------------------------------------------------------------------

describe('per-second and per-minute telemetry', () => {
  it('computes a window that spans per-minute and per-second rows exactly at whole minutes', async () => {
    const accountId = await accountIdOf(server.key);
    const calls = await createRule({ name: 'calls', metric: 'call_volume', window_duration: '60m' });
    const p50 = await createRule({ name: 'p50', metric: 'turn_latency_p50', window_duration: '60m', threshold_value: 150 });
    const cutoff = (START - 2 * HOUR) / 1000; // a whole minute: the last second kept only per minute
    const rows: { second: number; calls: number; latencies: number[] }[] = [];
    // Per minute up to the cutoff (each counted at its last second), per second after it.
    for (let m = 0; m <= 50; m++) rows.push({ second: cutoff - m * 60, calls: 2, latencies: [100, 100, 100] });
    for (let s = cutoff + 7; s < cutoff + 3000; s += 30) rows.push({ second: s, calls: 1, latencies: [200] });
    for (const row of rows) {
      await insertRow(row.second <= cutoff ? 'telemetry_minutes' : 'telemetry_seconds', accountId, row.second, { call: row.calls }, row.latencies);
    }
    const range = { from: iso(START - 125 * MINUTE), to: iso(START - 70 * MINUTE), step: '60s' };
    const callSeries = await okSeries(calls.id, range);
    const p50Series = await okSeries(p50.id, range);
    expect(callSeries.per_second_after).toBe(iso(cutoff * 1000));
    expect(callSeries.points).toHaveLength(55);
    let spanning = 0;
    callSeries.points.forEach((point: Point, i: number) => {
      const head = Date.parse(point.at) / 1000;
      const inWindow = rows.filter((r) => r.second > head - 3600 && r.second <= head);
      if (head - 3600 < cutoff && head > cutoff && inWindow.some((r) => r.second > cutoff)) spanning += 1;
      expect(point.value, point.at).toBe(inWindow.reduce((sum, r) => sum + r.calls, 0));
      const latencies = inWindow.flatMap((r) => r.latencies).sort((a, b) => a - b);
      const expected = latencies.length === 0 ? null : latencies[Math.floor(0.5 * (latencies.length - 1))]!;
      expect(p50Series.points[i].value, point.at).toBe(expected);
      expect(p50Series.points[i].state).toBe(expected === null ? 'no_data' : expected > 150 ? 'alert' : 'ok');
    });
    expect(spanning).toBeGreaterThan(30);
    // The mix changes the median: 100 ms while per-minute turns dominate the window, then 200 ms.
    expect(new Set(p50Series.points.map((p: Point) => p.value))).toEqual(new Set([100, 200]));
  });
});

// ---- missing data --------------------------------------------------------------------------

describe('missing data', () => {
  it('answers null and no_data for latency windows without turns', async () => {
    const rule = await createRule({ metric: 'turn_latency_p95', threshold_value: 100, window_duration: '5m' });
    // Turns in minutes 1-2 and 12, none in between (200 ms: below 256 ms latencies are exact).
    for (const minute of [1, 2, 12]) {
      clock.set(START + minute * MINUTE);
      await send([{ type: 'turn', latency_ms: 200 }]);
    }
    clock.set(START + 14 * MINUTE);
    const body = await okSeries(rule.id, { from: iso(START), to: iso(clock.now()), step: '1m' });
    expect(body.points.map((p: Point) => [p.value, p.state])).toEqual([
      [200, 'alert'], // 1
      [200, 'alert'],
      [200, 'alert'],
      [200, 'alert'],
      [200, 'alert'],
      [200, 'alert'], // 6: the turn of minute 2 is still in (1, 6]
      [null, 'no_data'], // 7
      [null, 'no_data'],
      [null, 'no_data'],
      [null, 'no_data'],
      [null, 'no_data'],
      [200, 'alert'], // 12
      [200, 'alert'],
      [200, 'alert'],
    ]);
  });

  it('answers null for count metrics of a scope never seen, 0 for a known quiet one', async () => {
    const unknownProject = await createRule({ name: 'never seen', project_id: 'proj_never', metric: 'call_volume' });
    const account = await createRule({ name: 'account calls', metric: 'call_volume' });
    clock.set(START + MINUTE);
    await send([{ type: 'call', project_id: 'proj_other' }]);
    clock.set(START + 20 * MINUTE);
    const range = { from: iso(START), to: iso(clock.now()), step: '1m' };
    const never = await okSeries(unknownProject.id, range);
    expect(never.points.every((p: Point) => p.value === null && p.state === 'no_data')).toBe(true);
    const known = await okSeries(account.id, range);
    expect(known.points.map((p: Point) => p.value)).toEqual([1, 1, 1, 1, 1, ...Array(15).fill(0)]);
  });

  it('finds no telemetry for a project named "" (the account’s own key in storage)', async () => {
    clock.set(START + MINUTE);
    await send([{ type: 'call' }, { type: 'turn', latency_ms: 100 }]);
    const res = await preview({ ...ruleBody({ project_id: '', metric: 'turn_latency_p50' }), from: iso(START), to: iso(START + MINUTE), step: '1m' });
    expect(res.status, res.text).toBe(200);
    expect(res.body.points).toEqual([{ at: iso(START + MINUTE), value: null, state: 'no_data' }]);
  });

  it('forgets a scope 24 hours after it was last seen, as the evaluator does', async () => {
    const accountId = await accountIdOf(server.key);
    const rule = await createRule({ name: 'calls', metric: 'call_volume', window_duration: '60m' });
    await insertRow('telemetry_minutes', accountId, (START - 25 * HOUR) / 1000, { call: 5 });
    const body = await okSeries(rule.id, { from: iso(START - 26 * HOUR), to: iso(START), step: '1h' });
    expect(body.points.map((p: Point) => p.value)).toEqual([5, ...Array(23).fill(0), null, null]);
  });
});

// ---- accounts --------------------------------------------------------------------------------

describe('accounts', () => {
  it('never counts another account’s telemetry, and hides its rules', async () => {
    const otherKey = await server.newKey('other');
    const mine = await createRule({ name: 'my calls', metric: 'call_volume' });
    const theirs = await createRule({ name: 'their calls', metric: 'call_volume' }, otherKey);
    clock.set(START + MINUTE);
    await send([{ type: 'call' }, { type: 'call' }, { type: 'call' }], otherKey);
    await send([{ type: 'call' }]);
    clock.set(START + 2 * MINUTE);
    const range = { from: iso(START), to: iso(clock.now()), step: '1m' };
    expect((await okSeries(mine.id, range)).points.map((p: Point) => p.value)).toEqual([1, 1]);
    expect((await okSeries(theirs.id, range, otherKey)).points.map((p: Point) => p.value)).toEqual([3, 3]);
    const previewed = await preview({ ...ruleBody({ metric: 'call_volume' }), ...range });
    expect(previewed.body.points.map((p: Point) => p.value)).toEqual([1, 1]);

    const foreign = await series(theirs.id);
    expect(foreign.status).toBe(404);
    expect(foreign.body).toEqual({ message: `alert rule ${theirs.id} not found` });
  });
});

// ---- several instances ---------------------------------------------------------------------

describe('several instances', () => {
  it.skipIf(!onPostgres)('answer the same series and preview from any instance, whichever owns the account', async () => {
    const other = await startTestServer({ clock, dir: server.dir });
    try {
      const otherKey = (await other.service.apiKeys.create('acme')).key;
      const rule = await createRule({ name: 'calls', metric: 'call_volume', window_duration: '5m' });
      for (let i = 1; i <= 6; i++) {
        clock.set(START + i * MINUTE);
        // Half the batches through each instance: the owner of the account's shard gets them either way.
        const target = i % 2 === 0 ? other : server;
        const res = await target.request('POST', '/v1/telemetry/events', { body: { events: Array(i).fill({ type: 'call' }) }, key: target === other ? otherKey : undefined });
        expect(res.status, res.text).toBe(202);
      }
      const range = { from: iso(START), to: iso(clock.now()), step: '1m' };
      const expected = [1, 3, 6, 10, 15, 20];
      const here = await okSeries(rule.id, range);
      const there = await other.request('GET', `/v1/alert-rules/${rule.id}/series?${new URLSearchParams(range)}`, { key: otherKey });
      expect(there.status, there.text).toBe(200);
      expect(here.points.map((p: Point) => p.value)).toEqual(expected);
      expect(there.body).toEqual(here);
      const previewed = await other.request('POST', '/v1/alert-rules/preview', { body: { ...ruleBody({ metric: 'call_volume' }), ...range }, key: otherKey });
      expect(previewed.body.points).toEqual(here.points);
    } finally {
      await other.close();
    }
  });
});

// ---- requests --------------------------------------------------------------------------------

describe('requests', () => {
  it('defaults to the last hour at 10 s, echoing the range used', async () => {
    const rule = await createRule();
    const body = await okSeries(rule.id);
    expect(body).toMatchObject({ metric: 'api_errors', operator: '>', threshold_value: 2, window_duration: '5m', project_id: null });
    expect(body).toMatchObject({ from: iso(START - HOUR), to: iso(START), step: '10s' });
    expect(body.points).toHaveLength(360);
    expect(body.points[0].at).toBe(iso(START - HOUR + 10 * SECOND));
    expect(body.points.at(-1).at).toBe(iso(START));
  });

  it('rejects bad ranges with 400 naming the field', async () => {
    const rule = await createRule();
    const cases: [Record<string, string>, string, RegExp][] = [
      [{ step: '10' }, 'step', /whole number of seconds, minutes or hours/],
      [{ step: '0s' }, 'step', /whole number/],
      [{ step: '1d' }, 'step', /whole number/],
      [{ step: '1.5s' }, 'step', /whole number/],
      [{ from: iso(START - DAY - MINUTE), step: '1m' }, 'step', /1,441 points .* at most 1,440/],
      [{ from: iso(START - 2 * HOUR), step: '1s' }, 'step', /7,200 points/],
      [{ from: iso(START), to: iso(START - MINUTE) }, 'from', /must be before to/],
      [{ from: iso(START - MINUTE), to: iso(START - MINUTE) }, 'from', /must be before to/],
      [{ from: iso(START - 5 * SECOND), step: '10s' }, 'step', /no point/],
      [{ to: iso(START + 2 * MINUTE) }, 'to', /must not be in the future/],
      [{ from: iso(START - 8 * DAY) }, 'from', /must not be before .*ALERTS_TELEMETRY_RETENTION/],
      [{ from: 'yesterday' }, 'from', /RFC 3339/],
      [{ to: '2026-02-30T10:00:00Z' }, 'to', /RFC 3339/],
    ];
    for (const [query, field, message] of cases) {
      const res = await series(rule.id, query);
      expect(res.status, JSON.stringify(query)).toBe(400);
      expect(res.body.message).toMatch(/^invalid query string: /);
      expect(res.body.errors, JSON.stringify(query)).toEqual([{ field, message: expect.stringMatching(message) }]);
    }
    // A day at one minute is exactly the limit; a little clock skew in `to` is taken as now.
    expect((await okSeries(rule.id, { from: iso(START - DAY), step: '1m' })).points).toHaveLength(1440);
    expect((await okSeries(rule.id, { from: iso(START - HOUR), to: iso(START + 30 * SECOND), step: '1m' })).to).toBe(iso(START));
  });

  it('answers 422 for a malformed rule id and 404 for an unknown one; "preview" is no rule id', async () => {
    expect((await series('not-a-rule')).status).toBe(422);
    expect((await series('ar_unknown0000')).status).toBe(404);
    for (const method of ['GET', 'PATCH', 'DELETE']) {
      const res = await server.request(method, '/v1/alert-rules/preview', method === 'PATCH' ? { body: { name: 'x' } } : {});
      expect(res.status, method).toBe(422);
    }
    expect((await server.request('GET', '/v1/alert-rules/preview/series')).status).toBe(422);
  });

  it('requires an API key', async () => {
    const rule = await createRule();
    expect((await series(rule.id, {}, null as unknown as string)).status).toBe(401);
    expect((await server.request('POST', '/v1/alert-rules/preview', { body: ruleBody(), key: null })).status).toBe(401);
  });

  it('validates a preview as a create request, with the same messages', async () => {
    const bodies = [
      { ...ruleBody(), metric: 'bogus' },
      { ...ruleBody(), threshold_value: -1 },
      { ...ruleBody(), name: undefined },
      { ...ruleBody(), extra: true },
      { ...ruleBody(), window_duration: '7m', operator: '!=' },
    ];
    for (const body of bodies) {
      const created = await server.request('POST', '/v1/alert-rules', { body });
      const previewed = await preview(body);
      expect(created.status).toBe(400);
      expect(previewed.status).toBe(400);
      expect(previewed.body).toEqual(created.body);
    }
    const res = await preview({ ...ruleBody(), step: '5 minutes' });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ message: expect.stringMatching(/^invalid request body: step /), errors: [{ field: 'step', message: expect.any(String) }] });
  });

  it('stores nothing and does not count toward the 10 rules of an account', async () => {
    for (let i = 0; i < 10; i++) await createRule({ name: `rule ${i}` });
    const before = await snapshotDatabase(server.service);
    const res = await preview({ ...ruleBody({ metric: 'call_volume', operator: '<', threshold_value: 1 }), step: '1m' });
    expect(res.status, res.text).toBe(200);
    expect(res.body.points).toHaveLength(60);
    expect(res.body.transitions).toEqual([{ at: iso(START - HOUR + MINUTE), from_state: 'unknown', to_state: 'no_data', value: null, event_type: null }]);
    expect(res.body.triggered_count).toBe(0);
    expect(await snapshotDatabase(server.service)).toEqual(before);
    expect((await server.request('GET', '/v1/alert-rules')).body.data).toHaveLength(10);
  });

  it('is documented in /openapi.json, marked as ours', async () => {
    const doc = (await server.request('GET', '/openapi.json', { key: null })).body;
    const get = doc.paths['/v1/alert-rules/{rule_id}/series'].get;
    const post = doc.paths['/v1/alert-rules/preview'].post;
    for (const op of [get, post]) {
      expect(op.description).toContain('Not part of the PolyAI contract.');
      expect(op.responses['400']).toBeDefined();
    }
    expect(get.parameters.map((p: { name: string }) => p.name).sort()).toEqual(['from', 'rule_id', 'step', 'to']);
  });
});
