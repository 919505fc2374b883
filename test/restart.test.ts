import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Database } from '../src/store/schema.js';
import { killAllChildren, startCliServer, type CliServer } from './helpers/cli-process.js';
import { databaseUrlFor, dropDatabaseFor, inspectDatabase } from './helpers/database.js';
import { ruleBody, startTestServer, testClock, type TestServer } from './helpers/server.js';

/**
 * Aggregates and rule states survive a restart: after it, every window holds what it held
 * before, firing rules keep firing with the same `since`, no transition is emitted twice or
 * lost, and windows go on sliding as if nothing had happened. In process (close, then a new
 * service on the same database and clock) and for real (`kill -9` of `alerts serve`).
 */

const START = Date.parse('2026-03-15T10:30:00.000Z');
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const iso = (ms: number) => new Date(ms).toISOString();

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'alerts-restart-'));
});
afterEach(async () => {
  await killAllChildren();
  rmSync(dir, { recursive: true, force: true });
  await dropDatabaseFor(dir);
});

type Event = { type: string; project_id?: string | null; latency_ms?: number; timestamp?: string };
const repeat = (n: number, event: Event): Event[] => Array.from({ length: n }, () => ({ ...event }));

/** Reads the database through a connection of its own. */
async function readDb<T>(url: string, query: (db: Kysely<Database>) => Promise<T>): Promise<T> {
  const db = inspectDatabase(url);
  try {
    return await query(db);
  } finally {
    await db.destroy();
  }
}

describe('in-process restart on the same database', () => {
  const clock = testClock(START);
  let server: TestServer | undefined;

  beforeEach(() => {
    clock.set(START);
  });
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  async function start(): Promise<TestServer> {
    server = await startTestServer({ clock, dir });
    return server;
  }

  async function restart(): Promise<TestServer> {
    await server!.close();
    server = undefined;
    return start();
  }

  async function createRule(overrides: Record<string, unknown>) {
    const res = await server!.request('POST', '/v1/alert-rules', { body: ruleBody(overrides) });
    expect(res.status, res.text).toBe(201);
    return res.body as { id: string; name: string };
  }

  async function send(events: Event[]) {
    const res = await server!.request('POST', '/v1/telemetry/events', { body: { events } });
    expect(res.status, res.text).toBe(202);
  }

  const rules = async () => (await server!.request('GET', '/v1/alert-rules')).body.data as Record<string, any>[];
  const byName = async () => Object.fromEntries((await rules()).map((r) => [r.name, r]));
  const outbox = async () =>
    (await server!.service.store.alertEvents.list()).map((e) => ({ id: e.id, rule_id: e.rule_id, event_type: e.event_type, payload: e.payload }));
  const tick = async (to: number) => {
    clock.set(to);
    await server!.service.engine.tick();
  };

  /** Calls of the account at known times: each count window can be computed exactly. */
  const CALLS: { at: number; project: string | null; n: number }[] = [
    { at: START - 30 * MINUTE, project: null, n: 2 },
    { at: START - 8 * MINUTE, project: 'proj_other', n: 3 },
    { at: START - 2 * MINUTE, project: 'proj_abc123', n: 4 },
  ];
  /** Calls in (now - window, now]: an event exactly a window old is out. */
  const expectedCalls = (windowMs: number, now: number, project?: string) =>
    CALLS.filter((c) => c.at > now - windowMs && c.at <= now && (project === undefined || c.project === project)).reduce(
      (sum, c) => sum + c.n,
      0,
    );

  async function setUp() {
    await start();
    await createRule({ name: 'errors', project_id: null, metric: 'api_errors', operator: '>', threshold_value: 2 });
    await createRule({ name: 'p95', project_id: 'proj_abc123', metric: 'turn_latency_p95', operator: '>=', threshold_value: 1500 });
    await createRule({ name: 'p50 60m', project_id: 'proj_abc123', metric: 'turn_latency_p50', operator: '>', threshold_value: 100_000, window_duration: '60m' });
    await createRule({ name: 'calls 5m', project_id: null, metric: 'call_volume', operator: '>', threshold_value: 1000 });
    await createRule({ name: 'calls 10m', project_id: null, metric: 'call_volume', operator: '>', threshold_value: 1000, window_duration: '10m' });
    await createRule({ name: 'calls 60m', project_id: null, metric: 'call_volume', operator: '>', threshold_value: 1000, window_duration: '60m' });
    await createRule({ name: 'stopped', project_id: 'proj_abc123', metric: 'call_volume', operator: '<', threshold_value: 1 });
    await createRule({ name: 'never', project_id: 'proj_never', metric: 'function_errors', operator: '>=', threshold_value: 1 });
    await createRule({ name: 'off', project_id: null, metric: 'api_errors', operator: '>', threshold_value: 2, enabled: false });

    await send([
      ...CALLS.flatMap((c) => repeat(c.n, { type: 'call', project_id: c.project, timestamp: iso(c.at) })),
      ...repeat(3, { type: 'api_error' }),
      ...repeat(20, { type: 'turn', project_id: 'proj_abc123', latency_ms: 1875, timestamp: iso(START - MINUTE) }),
    ]);
    // A second batch: fast turns 20 minutes ago, only in the 60 minute window.
    await send(Array.from({ length: 60 }, (_, i) => ({ type: 'turn', project_id: 'proj_abc123', latency_ms: 100 + i, timestamp: iso(START - 20 * MINUTE) })));
  }

  async function expectCallWindows(now: number) {
    const r = await byName();
    expect(r['calls 5m']!.current_value, `calls 5m at +${(now - START) / 1000}s`).toBe(expectedCalls(5 * MINUTE, now));
    expect(r['calls 10m']!.current_value, `calls 10m at +${(now - START) / 1000}s`).toBe(expectedCalls(10 * MINUTE, now));
    expect(r['calls 60m']!.current_value, `calls 60m at +${(now - START) / 1000}s`).toBe(expectedCalls(60 * MINUTE, now));
    expect(r['stopped']!.current_value).toBe(expectedCalls(5 * MINUTE, now, 'proj_abc123'));
  }

  it('keeps every window value, state and since; emits nothing on restart; windows then slide on correctly', async () => {
    await setUp();
    await tick(START + 10 * SECOND);
    const before = await byName();
    expect(before['errors']).toMatchObject({ current_state: 'alert', current_value: 3, since: iso(START) });
    expect(before['p95']).toMatchObject({ current_state: 'alert', since: iso(START) });
    expect(before['p50 60m']).toMatchObject({ current_state: 'ok' });
    expect(before['never']).toMatchObject({ current_state: 'no_data', current_value: null });
    expect(before['off']).toMatchObject({ current_state: 'unknown', current_value: null });
    expect(before['stopped']).toMatchObject({ current_state: 'ok', current_value: 4 });
    await expectCallWindows(START + 10 * SECOND);
    const eventsBefore = await outbox();
    expect(eventsBefore.map((e) => e.event_type)).toEqual(['alerts.triggered', 'alerts.triggered']);

    await restart();
    // The start-up pass ran at the same instant: nothing differs, not even last_evaluated_at.
    expect(await byName()).toEqual(before);
    expect(await outbox()).toEqual(eventsBefore);
    expect((await server!.request('GET', '/v1/alerts')).body.data.map((a: { name: string }) => a.name)).toEqual(['errors', 'p95']);

    // Just before the -2m calls leave the 5 minute window, and when they do.
    for (const at of [START + 2 * MINUTE + 59 * SECOND, START + 3 * MINUTE]) {
      await tick(at);
      await expectCallWindows(at);
    }
    const atThree = await byName();
    expect(atThree['stopped']).toMatchObject({ current_state: 'alert', current_value: 0, since: iso(START + 3 * MINUTE) });

    // Restart again, with a firing rule that began after the first restart.
    await restart();
    expect(await byName()).toEqual(atThree);

    await tick(START + 4 * MINUTE);
    expect((await byName())['p95']).toMatchObject({ current_state: 'no_data', current_value: null });
    await tick(START + 5 * MINUTE - SECOND);
    expect((await byName())['errors']).toMatchObject({ current_state: 'alert', current_value: 3, since: iso(START) });
    await tick(START + 5 * MINUTE);
    expect((await byName())['errors']).toMatchObject({ current_state: 'ok', current_value: 0, since: iso(START + 5 * MINUTE) });
    const p50 = async () => (await byName())['p50 60m']!;
    for (const at of [START + 6 * MINUTE, START + 10 * MINUTE, START + 28 * MINUTE, START + 30 * MINUTE]) {
      await tick(at);
      await expectCallWindows(at);
    }
    // The fast turns of 20 minutes before the start are in the hour until +40m; then only the slow ones.
    await tick(START + 40 * MINUTE - SECOND);
    expect(Math.abs((await p50()).current_value - 139)).toBeLessThanOrEqual(1.39);
    await tick(START + 40 * MINUTE);
    expect(Math.abs((await p50()).current_value - 1875)).toBeLessThanOrEqual(18.75);
    await tick(START + 52 * MINUTE);
    await expectCallWindows(START + 52 * MINUTE);

    await restart();
    expect(Math.abs((await p50()).current_value - 1875)).toBeLessThanOrEqual(18.75);
    for (const at of [START + 58 * MINUTE - SECOND, START + 58 * MINUTE]) {
      await tick(at);
      await expectCallWindows(at);
    }
    await tick(START + 59 * MINUTE);
    expect(await p50()).toMatchObject({ current_state: 'no_data', current_value: null });

    const events = await outbox();
    expect(events.slice(0, 2)).toEqual(eventsBefore);
    const rulesByName = await byName();
    expect(events.map((e) => [e.event_type, e.rule_id])).toEqual([
      ...eventsBefore.map((e) => [e.event_type, e.rule_id]),
      ['alerts.triggered', rulesByName['stopped']!.id],
      ['alerts.resolved', rulesByName['errors']!.id],
    ]);
    const resolved = JSON.parse(events[3]!.payload);
    expect(resolved.alert).toMatchObject({ previous_state: 'alert', triggered_at: iso(START), resolved_at: iso(START + 5 * MINUTE), current_value: 0 });
    expect(new Set(events.map((e) => e.id)).size).toBe(events.length);
  });

  it('has the same latency percentiles after a restart', async () => {
    await setUp();
    await tick(START + 30 * SECOND);
    const before = await byName();
    await restart();
    const after = await byName();
    for (const name of ['p95', 'p50 60m']) {
      expect(after[name]!.current_value, name).toBe(before[name]!.current_value);
      expect(after[name]!.current_value, name).toEqual(expect.any(Number));
    }
    // Within 1% of the exact values: 1875 for p95; the lower median of 60 fast and 20 slow turns.
    expect(Math.abs(after['p95']!.current_value - 1875)).toBeLessThanOrEqual(18.75);
    expect(Math.abs(after['p50 60m']!.current_value - 139)).toBeLessThanOrEqual(1.39);
  });

  it('applies what happened while it was down on start-up, once: resolves, triggers, no_data', async () => {
    await setUp();
    const eventsBefore = await outbox();
    await server!.close();
    server = undefined;

    // Down for six minutes: the 5 minute windows have emptied meanwhile.
    clock.set(START + 6 * MINUTE);
    await start();
    const after = await byName();
    expect(after['errors']).toMatchObject({ current_state: 'ok', current_value: 0, since: iso(START + 6 * MINUTE) });
    expect(after['p95']).toMatchObject({ current_state: 'no_data', current_value: null });
    expect(after['stopped']).toMatchObject({ current_state: 'alert', current_value: 0 });
    await expectCallWindows(START + 6 * MINUTE);

    for (let i = 0; i < 3; i++) await tick(START + 6 * MINUTE + i * SECOND);
    await restart();
    await tick(START + 7 * MINUTE);

    const events = await outbox();
    expect(events.slice(0, eventsBefore.length)).toEqual(eventsBefore);
    const added = events.slice(eventsBefore.length).map((e) => [e.event_type, e.rule_id]).sort();
    expect(added).toEqual(
      [
        ['alerts.resolved', after['errors']!.id],
        ['alerts.triggered', after['stopped']!.id],
      ].sort(),
    );
  });

  it('remembers that a scope is known after its telemetry has been pruned: a silent count stays 0, not no_data', async () => {
    await start();
    const quiet = await createRule({ name: 'quiet', project_id: 'proj_abc123', metric: 'call_volume', operator: '<', threshold_value: 1 });
    await send(repeat(5, { type: 'call', project_id: 'proj_abc123' }));
    // Two hours of silence, ticking every few minutes: the window empties, old batches are pruned.
    for (let at = START; at <= START + 2 * 60 * MINUTE; at += 5 * MINUTE) await tick(at);
    expect(await readDb(server!.dbPath, (db) => db.selectFrom('telemetry_batches').select('seq').execute())).toEqual([]);
    const firing = (await server!.request('GET', `/v1/alert-rules/${quiet.id}`)).body;
    expect(firing).toMatchObject({ current_state: 'alert', current_value: 0, since: iso(START + 5 * MINUTE) });
    const eventsBefore = await outbox();
    expect(eventsBefore.map((e) => e.event_type)).toEqual(['alerts.triggered']);

    await restart();
    expect((await server!.request('GET', `/v1/alert-rules/${quiet.id}`)).body).toEqual(firing);
    await tick(START + 2 * 60 * MINUTE + 5 * MINUTE);
    expect((await server!.request('GET', `/v1/alert-rules/${quiet.id}`)).body).toMatchObject({
      current_state: 'alert',
      current_value: 0,
      since: firing.since,
    });
    expect(await outbox()).toEqual(eventsBefore);
  });
});

describe('kill -9 of alerts serve', () => {
  const apiKey = 'bootstrap_' + randomBytes(24).toString('hex');
  let dbPath: string;
  beforeEach(async () => {
    dbPath = await databaseUrlFor(dir);
  });
  const serve = () =>
    startCliServer({
      cwd: dir,
      env: { DATABASE_URL: dbPath, ALERTS_BOOTSTRAP_API_KEY: apiKey, ALERTS_EVALUATION_INTERVAL_MS: '200', ALERTS_DELIVERY_WORKER: 'off', LOG_LEVEL: 'warn' },
    });

  async function call(server: CliServer, method: string, path: string, body?: unknown) {
    const res = await fetch(server.baseUrl + path, {
      method,
      headers: { 'x-api-key': apiKey, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text === '' ? undefined : JSON.parse(text), text };
  }

  async function killed(server: CliServer) {
    const exit = await server.stop('SIGKILL');
    expect(exit.signal).toBe('SIGKILL');
  }

  it('keeps a rule that fired just before the kill in alert, with one alerts.triggered and its telemetry still counted', async () => {
    const first = await serve();
    const created = await call(first, 'POST', '/v1/alert-rules', {
      name: 'API errors',
      metric: 'api_errors',
      operator: '>=',
      threshold_value: 3,
      window_duration: '5m',
    });
    expect(created.status, created.text).toBe(201);
    expect(created.body.current_state).toBe('no_data');
    const id = created.body.id as string;

    const sent = await call(first, 'POST', '/v1/telemetry/events', { events: [{ type: 'api_error' }, { type: 'api_error' }, { type: 'api_error', project_id: 'p1' }] });
    expect(sent.status, sent.text).toBe(202);
    // No grace period: SIGKILL straight after the 202.
    await killed(first);

    // What the database holds right after the kill, before any restart.
    const onDisk = await readDb(dbPath, (db) => db.selectFrom('alert_rules').select(['current_state', 'since']).where('id', '=', id).execute());
    expect(onDisk).toEqual([{ current_state: 'alert', since: expect.any(String) }]);
    const since = onDisk[0]!.since;

    const second = await serve();
    const rule = await call(second, 'GET', `/v1/alert-rules/${id}`);
    expect(rule.body).toMatchObject({ current_state: 'alert', since, current_value: 3 });
    const active = await call(second, 'GET', '/v1/alerts');
    expect(active.body.data).toEqual([expect.objectContaining({ alert_rule_id: id, since, current_value: 3 })]);

    // Several timer passes later it is still the same firing, not a new one.
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect((await call(second, 'GET', `/v1/alert-rules/${id}`)).body).toMatchObject({ current_state: 'alert', since, current_value: 3 });
    // One more error counts on top of the three from before the kill.
    expect((await call(second, 'POST', '/v1/telemetry/events', { events: [{ type: 'api_error' }] })).status).toBe(202);
    expect((await call(second, 'GET', `/v1/alert-rules/${id}`)).body).toMatchObject({ current_state: 'alert', since, current_value: 4 });
    expect((await second.stop()).code).toBe(0);

    const events = await readDb(dbPath, (db) => db.selectFrom('alert_events').select(['event_type', 'payload']).where('rule_id', '=', id).orderBy('seq').execute());
    expect(events.map((e) => e.event_type)).toEqual(['alerts.triggered']);
    expect(JSON.parse(events[0]!.payload).alert).toMatchObject({ id, previous_state: 'no_data', current_value: 3, triggered_at: since });
  });

  it('loses no acknowledged batch and keeps no half batch when killed in the middle of ingestion', async () => {
    const first = await serve();
    const created = await call(first, 'POST', '/v1/alert-rules', {
      name: 'calls',
      metric: 'call_volume',
      operator: '>=',
      threshold_value: 1,
      window_duration: '60m',
    });
    expect(created.status, created.text).toBe(201);
    const id = created.body.id as string;

    const PER_BATCH = 250;
    const batch = { events: repeat(PER_BATCH, { type: 'call', project_id: 'proj_load' }) };
    let started = 0;
    let acknowledged = 0;
    let stop = false;
    const stream = async () => {
      while (!stop) {
        started++;
        try {
          const res = await call(first, 'POST', '/v1/telemetry/events', batch);
          if (res.status === 202) acknowledged++;
          else throw new Error(`unexpected ${res.status}: ${res.text}`);
        } catch (error) {
          if (!stop) throw error;
        }
      }
    };
    const streams = Array.from({ length: 4 }, stream);
    while (acknowledged < 40) await new Promise((resolve) => setTimeout(resolve, 5));
    stop = true;
    await killed(first);
    await Promise.all(streams);

    const batches = await readDb(dbPath, (db) => db.selectFrom('telemetry_batches').select('deltas').execute());
    expect(batches.length).toBeGreaterThanOrEqual(acknowledged);
    expect(batches.length).toBeLessThanOrEqual(started);

    const second = await serve();
    const rule = (await call(second, 'GET', `/v1/alert-rules/${id}`)).body;
    // Every batch that got its 202 counts; a batch is all in or all out.
    expect(rule.current_value % PER_BATCH).toBe(0);
    expect(rule.current_value).toBe(batches.length * PER_BATCH);
    expect(rule.current_state).toBe('alert');
    expect((await second.stop()).code).toBe(0);

    const events = await readDb(dbPath, (db) => db.selectFrom('alert_events').select('event_type').where('rule_id', '=', id).execute());
    expect(events, first.stdout() + second.stdout()).toEqual([{ event_type: 'alerts.triggered' }]);
  });
});
