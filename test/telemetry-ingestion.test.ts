import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeDeltas } from '../src/engine/aggregates.js';
import { inspectDatabase } from './helpers/database.js';
import { ruleBody, snapshotDatabase, startTestServer, testClock, type RequestOptions, type TestServer } from './helpers/server.js';

/**
 * POST /v1/telemetry/events: a batch of 1..10,000 events is either recorded durably as a
 * whole (202 {accepted}) or rejected as a whole (400, every bad item named), never half.
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
type Event = Record<string, unknown>;

const post = (body: unknown, options: RequestOptions = {}) => server.request('POST', '/v1/telemetry/events', { body, ...options });

async function accepted(events: Event[], key?: string) {
  const res = await post({ events }, { key });
  expect(res.status, res.text).toBe(202);
  expect(res.body).toEqual({ accepted: events.length });
}

async function accountId(name: string): Promise<string> {
  const row = await server.service.store.db.selectFrom('accounts').select('id').where('name', '=', name).executeTakeFirstOrThrow();
  return row.id;
}

/** The stored batches, read through a connection of its own: only committed rows are seen. */
async function committedBatches(): Promise<{ account_id: string; received_at: number; deltas: string }[]> {
  const db = inspectDatabase(server.dbPath);
  try {
    return await db.selectFrom('telemetry_batches').select(['account_id', 'received_at', 'deltas']).orderBy('seq').execute();
  } finally {
    await db.destroy();
  }
}

/** Totals per counter over stored batches, optionally of one project (null: no project). */
function storedCounts(batches: { deltas: string }[], project?: string | null) {
  const totals = { call: 0, call_crash: 0, turn: 0, api_error: 0, function_error: 0 };
  for (const batch of batches) {
    for (const delta of decodeDeltas(batch.deltas)) {
      if (project !== undefined && delta.project !== project) continue;
      for (const key of Object.keys(totals) as (keyof typeof totals)[]) totals[key] += delta.counts[key];
    }
  }
  return totals;
}

async function createRule(overrides: Record<string, unknown>, key?: string) {
  const res = await server.request('POST', '/v1/alert-rules', { body: ruleBody(overrides), key });
  expect(res.status, res.text).toBe(201);
  return res.body as { id: string; current_state: string };
}

async function ruleOf(id: string, key?: string) {
  const res = await server.request('GET', `/v1/alert-rules/${id}`, { key });
  expect(res.status, res.text).toBe(200);
  return res.body as { current_state: string; current_value: number | null; last_evaluated_at: string | null; since: string };
}

/**
 * Sends a batch that must be rejected: 400, an `errors` list naming exactly `fields` (in
 * any order), and nothing of it stored.
 */
async function rejected(body: unknown, fields: string[] | null, options: RequestOptions = {}) {
  const before = await snapshotDatabase(server.service);
  const res = await post(body, options);
  expect(res.status, res.text).toBe(400);
  expect(res.body.message).toEqual(expect.any(String));
  if (fields !== null) {
    expect(res.body.errors, res.text).toEqual(expect.any(Array));
    for (const error of res.body.errors) expect(error).toEqual({ field: expect.any(String), message: expect.any(String) });
    expect([...new Set(res.body.errors.map((e: { field: string }) => e.field))].sort()).toEqual([...fields].sort());
  }
  expect(await snapshotDatabase(server.service)).toEqual(before);
  return res;
}

const valid: Event[] = [{ type: 'call', project_id: 'proj_a' }];

describe('accepting telemetry', () => {
  it('answers 202 {accepted: N} for events of all five types, with and without project_id and timestamp', async () => {
    const events: Event[] = [
      { type: 'call' },
      { type: 'call', project_id: 'proj_a' },
      { type: 'call', project_id: null },
      { type: 'call_crash', project_id: 'proj_a', timestamp: iso(START - 60_000) },
      { type: 'turn', latency_ms: 0 },
      { type: 'turn', project_id: 'proj_a', latency_ms: 850, timestamp: '2026-03-15T10:29:59.123Z' },
      { type: 'turn', project_id: null, latency_ms: 3_600_000, timestamp: '2026-03-15T11:29:59+01:00' },
      { type: 'api_error', project_id: 'proj_b' },
      { type: 'api_error', timestamp: '2026-03-15T10:30:00Z' },
      { type: 'function_error', project_id: 'proj_b', timestamp: iso(START) },
    ];
    await accepted(events);
    await accepted([{ type: 'function_error' }]);
  });

  it('has the batch committed in telemetry_batches before it answers, with scope and time of receipt', async () => {
    expect(await committedBatches()).toEqual([]);
    clock.advance(1234);
    await accepted([
      { type: 'call', project_id: 'proj_a' },
      { type: 'call', project_id: 'proj_a' },
      { type: 'turn', project_id: 'proj_a', latency_ms: 120 },
      { type: 'call_crash' },
      { type: 'api_error', project_id: 'proj_b', timestamp: iso(START - 30 * 60_000) },
      { type: 'function_error', project_id: null },
    ]);
    // Read at once, from another connection: the 202 came after the commit.
    const batches = await committedBatches();
    expect(batches).toHaveLength(1);
    expect(batches[0]!.account_id).toBe(await accountId('acme'));
    expect(batches[0]!.received_at).toBe(START + 1234);
    expect(storedCounts(batches)).toEqual({ call: 2, call_crash: 1, turn: 1, api_error: 1, function_error: 1 });
    expect(storedCounts(batches, 'proj_a')).toEqual({ call: 2, call_crash: 0, turn: 1, api_error: 0, function_error: 0 });
    expect(storedCounts(batches, null)).toEqual({ call: 0, call_crash: 1, turn: 0, api_error: 0, function_error: 1 });
    const late = decodeDeltas(batches[0]!.deltas).find((d) => d.project === 'proj_b')!;
    expect(late.second).toBe(Math.floor((START - 30 * 60_000) / 1000));

    await accepted([{ type: 'call' }]);
    expect(await committedBatches()).toHaveLength(2);
  });

  it('counts each type toward its metric, project events toward the account too', async () => {
    const rule = (metric: string, project_id: string | null = null) =>
      createRule({ name: metric, metric, project_id, operator: '>', threshold_value: 1_000_000 });
    const volume = await rule('call_volume');
    const crashes = await rule('call_crashes');
    const apiErrors = await rule('api_errors');
    const functionErrors = await rule('function_errors');
    const p50 = await rule('turn_latency_p50');
    const p95 = await rule('turn_latency_p95');
    const projectVolume = await rule('call_volume', 'proj_a');
    const latencies = Array.from({ length: 100 }, (_, i) => (i + 1) * 10);
    await accepted([
      ...Array.from({ length: 5 }, () => ({ type: 'call', project_id: 'proj_a' })),
      { type: 'call' },
      { type: 'call', project_id: 'proj_b' },
      { type: 'call_crash', project_id: 'proj_b' },
      ...Array.from({ length: 3 }, () => ({ type: 'api_error' })),
      ...Array.from({ length: 4 }, () => ({ type: 'function_error', project_id: 'proj_a' })),
      ...latencies.map((latency_ms) => ({ type: 'turn', project_id: 'proj_c', latency_ms })),
    ]);
    const value = async (r: { id: string }) => (await ruleOf(r.id)).current_value;
    expect(await value(volume)).toBe(7);
    expect(await value(projectVolume)).toBe(5);
    expect(await value(crashes)).toBe(1);
    expect(await value(apiErrors)).toBe(3);
    expect(await value(functionErrors)).toBe(4);
    // Lower nearest rank of 10..1000: p50 is 500, p95 is 950 (within 1%).
    expect(Math.abs((await value(p50))! - 500)).toBeLessThanOrEqual(5);
    expect(Math.abs((await value(p95))! - 950)).toBeLessThanOrEqual(9.5);
    for (const r of [volume, crashes, apiErrors, functionErrors, p50, p95, projectVolume]) {
      expect((await ruleOf(r.id)).current_state).toBe('ok');
    }
  });

  it('accepts a batch of 10,000 valid events, even with long project ids (over the 1 MiB limit of other routes)', async () => {
    const rule = await createRule({ name: 'volume', project_id: null, metric: 'call_volume', operator: '>=', threshold_value: 10_000 });
    const events = Array.from({ length: 10_000 }, (_, i) => ({ type: 'call', project_id: `proj_${String(i % 50).padStart(250, 'x')}` }));
    expect(JSON.stringify({ events }).length).toBeGreaterThan(2 * 1024 * 1024);
    await accepted(events);
    expect(await ruleOf(rule.id)).toMatchObject({ current_state: 'alert', current_value: 10_000 });
    expect(storedCounts(await committedBatches()).call).toBe(10_000);
  });

  it('accepts event times from exactly 5 minutes ahead to just under 60 minutes old', async () => {
    await accepted([
      { type: 'call', timestamp: iso(START + 5 * 60_000) },
      { type: 'call', timestamp: iso(START - 60 * 60_000 + 1) },
      { type: 'call', timestamp: iso(START) },
    ]);
  });

  it('answers 413 to a body over 8 MiB and stores nothing', async () => {
    const before = await snapshotDatabase(server.service);
    const pad = 'p'.repeat(255);
    const events = Array.from({ length: 10_000 }, () => ({ type: 'turn', project_id: pad, latency_ms: 1, timestamp: iso(START) }));
    const body = JSON.stringify({ events }).replace(/\]\}$/, `${' '.repeat(8 * 1024 * 1024)}]}`);
    const res = await post(undefined, { rawBody: body });
    expect(res.status).toBe(413);
    expect(await snapshotDatabase(server.service)).toEqual(before);
  });
});

describe('rejecting a batch', () => {
  it.each<[string, Event, string]>([
    ['a turn without latency_ms', { type: 'turn' }, 'latency_ms'],
    ['latency_ms on a call', { type: 'call', latency_ms: 100 }, 'latency_ms'],
    ['latency_ms on an api_error', { type: 'api_error', latency_ms: 0 }, 'latency_ms'],
    ['a latency of -1', { type: 'turn', latency_ms: -1 }, 'latency_ms'],
    ['a latency of 3,600,001 ms', { type: 'turn', latency_ms: 3_600_001 }, 'latency_ms'],
    ['a latency of 1.5', { type: 'turn', latency_ms: 1.5 }, 'latency_ms'],
    ['a latency given as the string "100"', { type: 'turn', latency_ms: '100' }, 'latency_ms'],
    ['a latency of null', { type: 'turn', latency_ms: null }, 'latency_ms'],
    ['a time more than 5 minutes ahead', { type: 'call', timestamp: iso(START + 5 * 60_000 + 1) }, 'timestamp'],
    ['a time a day ahead', { type: 'call', timestamp: iso(START + 86_400_000) }, 'timestamp'],
    ['a time exactly 60 minutes old', { type: 'call', timestamp: iso(START - 60 * 60_000) }, 'timestamp'],
    ['a time two hours old', { type: 'turn', latency_ms: 5, timestamp: iso(START - 2 * 60 * 60_000) }, 'timestamp'],
    ['a malformed time', { type: 'call', timestamp: 'yesterday' }, 'timestamp'],
    ['a time without a zone', { type: 'call', timestamp: '2026-03-15T10:30:00' }, 'timestamp'],
    ['an impossible date', { type: 'call', timestamp: '2026-02-30T10:30:00Z' }, 'timestamp'],
    ['a time as epoch milliseconds', { type: 'call', timestamp: START }, 'timestamp'],
    ['an unknown type', { type: 'call_started' }, 'type'],
    ['a missing type', { project_id: 'proj_a' }, 'type'],
    ['a type in the wrong case', { type: 'CALL' }, 'type'],
    ['an unknown field', { type: 'call', duration_ms: 10 }, 'duration_ms'],
    ['an empty project_id', { type: 'call', project_id: '' }, 'project_id'],
    ['a numeric project_id', { type: 'call', project_id: 7 }, 'project_id'],
  ])('with %s, naming the item and field', async (_what, bad, field) => {
    // The bad item sits among valid ones; the whole batch goes.
    const events: Event[] = [...Array.from({ length: 7 }, () => ({ type: 'call' })), bad, { type: 'turn', latency_ms: 10 }];
    const res = await rejected({ events }, [`events[7].${field}`]);
    expect(res.body.message).toMatch(/events\[7\]/);
  });

  it.each<[string, unknown]>([
    ['non-object event', 'call'],
    ['null event', null],
    ['array event', [{ type: 'call' }]],
  ])('with a %s, naming the item', async (_what, bad) => {
    const res = await rejected({ events: [{ type: 'call' }, bad] }, null);
    expect(res.body.errors.map((e: { field: string }) => e.field)).toContain('events[1]');
  });

  it('names every bad item of a batch, whatever is wrong with each', async () => {
    const events: Event[] = Array.from({ length: 20 }, (_, i) => ({ type: 'turn', project_id: 'proj_a', latency_ms: 100 + i }));
    events[0] = { type: 'page_view' };
    events[3] = { type: 'call', timestamp: iso(START + 10 * 60_000) };
    events[5] = { type: 'call', colour: 'blue' };
    events[9] = { type: 'api_error', timestamp: 'not a time' };
    events[12] = { type: 'call', latency_ms: 30 };
    events[17] = { type: 'turn', project_id: 'proj_a' };
    events[19] = { type: 'turn', latency_ms: -5, timestamp: iso(START - 61 * 60_000) };
    await rejected({ events }, [
      'events[0].type',
      'events[3].timestamp',
      'events[5].colour',
      'events[9].timestamp',
      'events[12].latency_ms',
      'events[17].latency_ms',
      'events[19].latency_ms',
      'events[19].timestamp',
    ]);
  });

  it('lists at most 100 problems when thousands of items are bad, and says there are more', async () => {
    const semantic = Array.from({ length: 5000 }, () => ({ type: 'turn' }));
    const first = await rejected({ events: semantic }, null);
    expect(first.body.errors).toHaveLength(100);
    expect(first.body.errors[0].field).toBe('events[0].latency_ms');
    expect(first.body.errors[99].field).toBe('events[99].latency_ms');
    expect(first.body.message).toMatch(/more/);

    const schema = Array.from({ length: 5000 }, () => ({ type: 'turn', latency_ms: 'slow' }));
    const second = await rejected({ events: schema }, null);
    expect(second.body.errors.length).toBeGreaterThan(0);
    expect(second.body.errors.length).toBeLessThanOrEqual(100);
    expect(second.body.errors[0].field).toBe('events[0].latency_ms');
  });

  it('with an empty events array', async () => {
    await rejected({ events: [] }, ['events']);
  });

  it('with 10,001 events', async () => {
    const events = Array.from({ length: 10_001 }, () => ({ type: 'call' }));
    await rejected({ events }, ['events']);
  });

  it('without events', async () => {
    await rejected({}, ['events']);
    await rejected({ event: [{ type: 'call' }] }, ['events', 'event']);
  });

  it('with an unknown top-level field beside valid events', async () => {
    await rejected({ events: valid, account_id: 'someone-else' }, ['account_id']);
  });

  it.each<[string, string]>([
    ['an array', JSON.stringify([{ type: 'call' }])],
    ['a string', JSON.stringify('events')],
    ['a number', '42'],
    ['null', 'null'],
    ['events as an object', JSON.stringify({ events: { 0: { type: 'call' } } })],
    ['malformed JSON', '{"events": [{"type": "call"}'],
  ])('that is %s', async (_what, raw) => {
    await rejected(undefined, null, { rawBody: raw });
  });

  it('with an empty body', async () => {
    await rejected(undefined, null, { rawBody: '' });
  });

  it('with 415 when the body is not JSON, storing nothing', async () => {
    const before = await snapshotDatabase(server.service);
    const res = await post(undefined, { rawBody: JSON.stringify({ events: valid }), contentType: 'text/plain' });
    expect(res.status).toBe(415);
    expect(res.body.message).toEqual(expect.any(String));
    expect(await snapshotDatabase(server.service)).toEqual(before);
  });

  it('with 401 and nothing stored without a valid key', async () => {
    for (const key of [null, 'alk_' + 'z'.repeat(43)]) {
      const before = await snapshotDatabase(server.service);
      const res = await post({ events: valid }, { key });
      expect(res.status).toBe(401);
      expect(await snapshotDatabase(server.service)).toEqual(before);
    }
  });

  it('leaves rules untouched: a rejected batch is not evaluated', async () => {
    const rule = await createRule({ name: 'calls', project_id: null, metric: 'call_volume', operator: '>', threshold_value: 0 });
    expect(rule.current_state).toBe('no_data');
    await rejected({ events: [{ type: 'call' }, { type: 'call', latency_ms: 1 }] }, ['events[1].latency_ms']);
    expect(await ruleOf(rule.id)).toMatchObject({ current_state: 'no_data', current_value: null });
    expect(await server.service.store.alertEvents.list()).toEqual([]);
  });
});

describe('accounts', () => {
  it("never lets one account's events affect another account's rules", async () => {
    const otherKey = await server.newKey('globex');
    const rules = async (key?: string) => ({
      project: await createRule({ name: 'p95', project_id: 'proj_shared', metric: 'turn_latency_p95', operator: '>', threshold_value: 1000 }, key),
      account: await createRule({ name: 'calls', project_id: null, metric: 'call_volume', operator: '>=', threshold_value: 3 }, key),
      quiet: await createRule({ name: 'quiet calls', project_id: 'proj_shared', metric: 'call_volume', operator: '<', threshold_value: 1 }, key),
    });
    const mine = await rules();
    const theirs = await rules(otherKey);

    // They send a little of their own, so their scope is known: their counts are theirs alone.
    await accepted([{ type: 'call', project_id: 'proj_other' }], otherKey);
    clock.advance(1000);
    await accepted([
      ...Array.from({ length: 10 }, () => ({ type: 'call', project_id: 'proj_shared' })),
      ...Array.from({ length: 10 }, () => ({ type: 'turn', project_id: 'proj_shared', latency_ms: 2500 })),
    ]);
    await server.service.engine.tick();

    expect(await ruleOf(mine.project.id)).toMatchObject({ current_state: 'alert' });
    expect(await ruleOf(mine.account.id)).toMatchObject({ current_state: 'alert', current_value: 10 });
    expect(await ruleOf(mine.quiet.id)).toMatchObject({ current_state: 'ok', current_value: 10 });

    expect(await ruleOf(theirs.project.id, otherKey)).toMatchObject({ current_state: 'no_data', current_value: null });
    expect(await ruleOf(theirs.account.id, otherKey)).toMatchObject({ current_state: 'ok', current_value: 1 });
    // Their proj_shared never sent anything: no data, not our 10 calls.
    expect(await ruleOf(theirs.quiet.id, otherKey)).toMatchObject({ current_state: 'no_data', current_value: null });

    const otherId = await accountId('globex');
    const events = await server.service.store.alertEvents.list(otherId);
    expect(events).toEqual([]);
    expect((await server.request('GET', '/v1/alerts', { key: otherKey })).body.data).toEqual([]);
    const stored = await committedBatches();
    expect(storedCounts(stored.filter((b) => b.account_id === otherId))).toEqual({
      call: 1,
      call_crash: 0,
      turn: 0,
      api_error: 0,
      function_error: 0,
    });
  });
});
