/**
 * Telemetry roll-ups: stored batches are folded into per-second and per-minute rows, for the
 * account as a whole (project '') and for each project, exactly once, and pruned past their
 * retention; a batch is pruned only once rolled up. On the database the suite runs on
 * (SQLite, or PostgreSQL with TEST_DATABASE_URL).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { COUNTERS, PER_SECOND_RETENTION_MS, type Counter, type TelemetryEvent, type TelemetryEventType } from '../src/domain/telemetry.js';
import { minuteOf, mergeLatencyPairs } from '../src/domain/telemetry-rollups.js';
import { shardOf } from '../src/domain/shards.js';
import { deltasOf, encodeDeltas } from '../src/engine/aggregates.js';
import { binOf } from '../src/engine/latency-histogram.js';
import { createTelemetryRollups, rowsOf, type TelemetryRollups } from '../src/engine/telemetry-rollup.js';
import { createLogger } from '../src/logger.js';
import type { Database } from '../src/store/schema.js';
import { openStore, type Store } from '../src/store/store.js';
import { killAllChildren, lastLine, runCli, startCliServer, type CliServer } from './helpers/cli-process.js';
import { request, startCluster } from './helpers/cluster.js';
import { databaseUrlFor, dropDatabaseFor, inspectDatabase, locationOf, onPostgres, testDatabaseKind } from './helpers/database.js';
import { startTestServer, testClock, type TestServer } from './helpers/server.js';

const NOW = Date.parse('2026-03-15T10:30:00.000Z');
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const iso = (ms: number) => new Date(ms).toISOString();

let dir: string;
let url: string;
const cleanups: (() => Promise<void>)[] = [];
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'alerts-rollups-'));
  url = await databaseUrlFor(dir);
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await killAllChildren();
  rmSync(dir, { recursive: true, force: true });
  await dropDatabaseFor(dir);
});

async function open(): Promise<Store> {
  const store = await openStore({ location: locationOf(url) });
  cleanups.push(() => store.close());
  return store;
}

function roller(store: Store, options: { clock?: { now(): number }; retentionMs?: number | null; pageSize?: number } = {}): TelemetryRollups {
  const job = createTelemetryRollups({
    rollups: store.telemetryRollups,
    clock: options.clock ?? { now: () => NOW },
    logger: createLogger('silent'),
    telemetryRetentionMs: options.retentionMs === undefined ? 7 * DAY : options.retentionMs,
    intervalMs: 0,
    pageSize: options.pageSize,
  });
  cleanups.push(() => job.stop());
  return job;
}

const event = (type: TelemetryEventType, time: number, project: string | null = null, latency?: number): TelemetryEvent => ({
  type,
  project_id: project,
  time,
  latency_ms: type === 'turn' ? (latency ?? 100) : null,
});

/** Stores one batch of the account, as ingestion does; returns its shard sequence number. */
async function record(store: Store, accountId: string, events: TelemetryEvent[], receivedAt = NOW): Promise<number> {
  const deltas = deltasOf(events);
  const projects = [...new Set(events.flatMap((e) => (e.project_id === null ? [] : [e.project_id])))];
  const [outcome] = await store.telemetry.record([{ accountId, receivedAt, deltas: encodeDeltas(deltas), projects }]);
  return (outcome as { shardSeq: number }).shardSeq;
}

interface Expected {
  counts: Record<Counter, number>;
  latencies: Map<number, number>;
}
type Table = 'telemetry_seconds' | 'telemetry_minutes';
const keyOf = (account: string, project: string, second: number) => `${account}/${project}/${second}`;

/** What each table must hold for these events, computed event by event. */
function expectedRows(events: readonly { account: string; event: TelemetryEvent }[]): Record<Table, Record<string, { counts: Record<Counter, number>; latencies: number[] }>> {
  const tables: Record<Table, Map<string, Expected>> = { telemetry_seconds: new Map(), telemetry_minutes: new Map() };
  for (const { account, event: e } of events) {
    const second = Math.floor(e.time / 1000);
    for (const project of e.project_id === null ? [''] : ['', e.project_id]) {
      for (const [table, at] of [['telemetry_seconds', second], ['telemetry_minutes', minuteOf(second)]] as const) {
        const key = keyOf(account, project, at);
        let row = tables[table].get(key);
        if (!row) tables[table].set(key, (row = { counts: { call: 0, call_crash: 0, turn: 0, api_error: 0, function_error: 0 }, latencies: new Map() }));
        row.counts[e.type] += 1;
        if (e.latency_ms !== null) row.latencies.set(binOf(e.latency_ms), (row.latencies.get(binOf(e.latency_ms)) ?? 0) + 1);
      }
    }
  }
  const flat = (rows: Map<string, Expected>) =>
    Object.fromEntries(
      [...rows].map(([key, r]) => [key, { counts: r.counts, latencies: [...r.latencies].sort((a, b) => a[0] - b[0]).flat() }]),
    );
  return { telemetry_seconds: flat(tables.telemetry_seconds), telemetry_minutes: flat(tables.telemetry_minutes) };
}

/** Both tables as stored, in the shape of expectedRows. */
async function storedRows(db: Kysely<Database>): Promise<ReturnType<typeof expectedRows>> {
  const read = async (table: Table) =>
    Object.fromEntries(
      (await db.selectFrom(table).selectAll().execute()).map((r) => [
        keyOf(r.account_id, r.project_key, Number(r.second)),
        { counts: Object.fromEntries(COUNTERS.map((c) => [c, Number(r[c])])) as Record<Counter, number>, latencies: JSON.parse(r.latencies) as number[] },
      ]),
    );
  return { telemetry_seconds: await read('telemetry_seconds'), telemetry_minutes: await read('telemetry_minutes') };
}

const rolledSeq = async (db: Kysely<Database>, shard: number) =>
  Number((await db.selectFrom('telemetry_rollup_progress').select('rolled_seq').where('shard', '=', shard).executeTakeFirstOrThrow()).rolled_seq);
const batchCount = async (db: Kysely<Database>) => (await db.selectFrom('telemetry_batches').select('shard_seq').execute()).length;

describe(`telemetry roll-ups (${testDatabaseKind})`, () => {
  it('puts an event exactly at a minute edge in the minute that ends there, and the next second in the next minute', async () => {
    const store = await open();
    const edge = Date.parse('2026-03-15T10:00:00.000Z');
    const second = edge / 1000;
    await record(store, 'acme', [
      event('call', edge), // 10:00:00.000: the last second of the minute (09:59:00, 10:00:00]
      event('call', edge + 999), // the same second
      event('api_error', edge - 1), // 09:59:59.999: the same minute
      event('turn', edge - 59_999, 'p1', 300), // 09:59:00.001 is second 09:59:00: the minute before
      event('call_crash', edge + 1000), // 10:00:01: the next minute
    ]);
    expect(await roller(store).rollNow()).toBe(1);
    const rows = await storedRows(store.db);
    const minute = (account: string, project: string, at: number) => rows.telemetry_minutes[keyOf(account, project, at)];
    expect(minute('acme', '', second)?.counts).toEqual({ call: 2, call_crash: 0, turn: 0, api_error: 1, function_error: 0 });
    expect(minute('acme', '', second - 60)?.counts).toEqual({ call: 0, call_crash: 0, turn: 1, api_error: 0, function_error: 0 });
    expect(minute('acme', '', second - 60)?.latencies).toEqual([binOf(300), 1]);
    expect(minute('acme', 'p1', second - 60)?.counts.turn).toBe(1);
    expect(minute('acme', '', second + 60)?.counts).toEqual({ call: 0, call_crash: 1, turn: 0, api_error: 0, function_error: 0 });
    expect(Object.keys(rows.telemetry_minutes).sort()).toEqual(
      [keyOf('acme', '', second - 60), keyOf('acme', 'p1', second - 60), keyOf('acme', '', second), keyOf('acme', '', second + 60)].sort(),
    );
    expect(rows.telemetry_seconds[keyOf('acme', '', second)]?.counts.call).toBe(2);
    expect(rows.telemetry_seconds[keyOf('acme', '', second - 1)]?.counts.api_error).toBe(1);
    expect(rows.telemetry_seconds[keyOf('acme', '', second - 60)]?.counts.turn).toBe(1);
    expect(Object.keys(rows.telemetry_seconds)).toHaveLength(5);
  });

  it('holds in the second and minute rows exactly the sums of the batches, for accounts and projects, latencies merged across batches', async () => {
    const store = await open();
    // Pages of 3 batches: rows are merged across folds as well as within one.
    const job = roller(store, { pageSize: 3 });
    let seed = 7;
    const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648) / 2_147_483_648;
    const sent: { account: string; event: TelemetryEvent }[] = [];
    const types: TelemetryEventType[] = ['call', 'call_crash', 'turn', 'api_error', 'function_error'];
    for (let b = 0; b < 24; b++) {
      const account = ['acme', 'globex', 'initech'][b % 3]!;
      const events = Array.from({ length: 40 }, () =>
        event(types[Math.floor(random() * 5)]!, NOW - Math.floor(random() * 3 * MINUTE), [null, 'p1', 'p2 ,"{}\\ é'][Math.floor(random() * 3)]!, Math.floor(random() * 5000)),
      );
      await record(store, account, events);
      sent.push(...events.map((e) => ({ account, event: e })));
      if (b % 5 === 4) await job.rollNow();
    }
    await job.rollNow();
    expect(await storedRows(store.db)).toEqual(expectedRows(sent));
    for (const account of ['acme', 'globex', 'initech']) {
      const progress = (await store.telemetryRollups.progress()).find((p) => p.shard === shardOf(account))!;
      expect(progress.rolledSeq).toBe(progress.lastSeq);
    }
    // Nothing left: another pass folds nothing and changes nothing.
    expect(await job.rollNow()).toBe(0);
    expect(await storedRows(store.db)).toEqual(expectedRows(sent));
  });

  it('merges latency histograms bin by bin, whichever order', () => {
    expect(mergeLatencyPairs([1, 2, 300, 1], [0, 5, 1, 1, 400, 2])).toEqual([0, 5, 1, 3, 300, 1, 400, 2]);
    expect(mergeLatencyPairs([0, 5, 1, 1, 400, 2], [1, 2, 300, 1])).toEqual([0, 5, 1, 3, 300, 1, 400, 2]);
    expect(mergeLatencyPairs([], [3, 1])).toEqual([3, 1]);
  });

  it('writes nothing for a fold whose batches another roller folded first', async () => {
    const store = await open();
    const shard = shardOf('acme');
    const seq = await record(store, 'acme', [event('call', NOW)]);
    const batches = await store.telemetryRollups.unrolled(shard, 0, 10);
    expect(await store.telemetryRollups.fold(shard, 0, seq, rowsOf(batches))).toBe(true);
    const once = await storedRows(store.db);
    // A second roller that read the same batches before the first committed.
    expect(await store.telemetryRollups.fold(shard, 0, seq, rowsOf(batches))).toBe(false);
    expect(await storedRows(store.db)).toEqual(once);
    expect(once.telemetry_minutes[keyOf('acme', '', minuteOf(NOW / 1000))]?.counts.call).toBe(1);
    expect(await rolledSeq(store.db, shard)).toBe(seq);
  });

  it.skipIf(!onPostgres)('folds each batch once when two instances roll the same shards at the same time (PostgreSQL)', async () => {
    const a = await open();
    const b = await open();
    const sent: { account: string; event: TelemetryEvent }[] = [];
    for (let i = 0; i < 30; i++) {
      const account = `acct_${i % 4}`;
      const events = [event('call', NOW - i * SECOND, 'p1'), event('turn', NOW - i * 7 * SECOND, null, 200 + i * 37)];
      await record(a, account, events);
      sent.push(...events.map((e) => ({ account, event: e })));
    }
    // Two folds of the same run, from two pools: the progress row's lock lets one through.
    const shard = shardOf('acct_0');
    const run = await a.telemetryRollups.unrolled(shard, 0, 100);
    const results = await Promise.all([a, b].map((s) => s.telemetryRollups.fold(shard, 0, run.at(-1)!.shard_seq, rowsOf(run))));
    expect(results.filter(Boolean)).toHaveLength(1);
    // Two whole jobs racing over every shard, a page at a time.
    const folded = await Promise.all([roller(a, { pageSize: 2 }).rollNow(), roller(b, { pageSize: 2 }).rollNow()]);
    expect(folded[0]! + folded[1]! + run.length).toBe(30);
    expect(await storedRows(a.db)).toEqual(expectedRows(sent));
  });

  it('prunes second rows after the per-second retention and minute rows after ALERTS_TELEMETRY_RETENTION, keeping everything younger', async () => {
    const store = await open();
    const clock = testClock(NOW);
    const retentionMs = 2 * DAY;
    await record(store, 'acme', [event('call', NOW), event('call', NOW - 10 * MINUTE, 'p1'), event('turn', NOW - 30 * MINUTE, null, 120)]);
    const job = roller(store, { clock, retentionMs });
    await job.rollNow();
    const before = await storedRows(store.db);
    const seconds = () => store.db.selectFrom('telemetry_seconds').select(['project_key', 'second']).orderBy('second').execute();
    const minutes = () => store.db.selectFrom('telemetry_minutes').select(['project_key', 'second']).orderBy('second').execute();

    // The oldest second is kept while it is within the retention, and goes when it is not.
    const oldest = NOW - 30 * MINUTE;
    clock.set(oldest + PER_SECOND_RETENTION_MS);
    expect(await job.pruneNow()).toEqual({ seconds: 0, minutes: 0 });
    clock.set(oldest + PER_SECOND_RETENTION_MS + SECOND);
    expect(await job.pruneNow()).toEqual({ seconds: 1, minutes: 0 });
    expect((await seconds()).map((r) => Number(r.second))).toEqual([(NOW - 10 * MINUTE) / 1000, (NOW - 10 * MINUTE) / 1000, NOW / 1000]);
    clock.set(NOW + PER_SECOND_RETENTION_MS + SECOND);
    await job.pruneNow();
    expect(await seconds()).toEqual([]);
    expect(await storedRows(store.db).then((r) => r.telemetry_minutes)).toEqual(before.telemetry_minutes);

    // Minute rows, by their last second.
    clock.set(NOW - 10 * MINUTE + retentionMs + SECOND);
    expect(await job.pruneNow()).toEqual({ seconds: 0, minutes: 3 });
    expect(await minutes()).toEqual([{ project_key: '', second: NOW / 1000 }]);
    clock.set(NOW + retentionMs + SECOND);
    await job.pruneNow();
    expect(await minutes()).toEqual([]);
  });

  it('keeps minute rows for ever with the retention off, and deletes many rows in several short statements', async () => {
    const store = await open();
    const clock = testClock(NOW);
    for (let i = 0; i < 5; i++) {
      await record(store, `acct_${i}`, Array.from({ length: 1000 }, (_, k) => event('call', NOW - k * SECOND, `p${k % 2}`)));
    }
    const kept = roller(store, { clock, retentionMs: null });
    await kept.rollNow();
    clock.set(NOW + 365 * DAY);
    // 5 accounts x (1000 account seconds + 1000 project seconds): beyond one delete of 2,000.
    expect(await kept.pruneNow()).toEqual({ seconds: 10_000, minutes: 0 });
    expect((await store.db.selectFrom('telemetry_minutes').select('second').execute()).length).toBe(5 * 3 * 17);
  });

  it('never prunes a batch before it is rolled up, however old; prunes it once rolled', async () => {
    const store = await open();
    await record(store, 'acme', [event('call', NOW)], NOW);
    await record(store, 'globex', [event('call', NOW)], NOW);
    const later = NOW + 2 * HOUR;
    expect(await store.telemetry.pruneBefore(later)).toBe(0);
    expect(await batchCount(store.db)).toBe(2);
    // Only acme's shard rolled.
    const shard = shardOf('acme');
    const run = await store.telemetryRollups.unrolled(shard, 0, 10);
    await store.telemetryRollups.fold(shard, 0, run.at(-1)!.shard_seq, rowsOf(run));
    expect(await store.telemetry.pruneBefore(later)).toBe(shardOf('globex') === shard ? 2 : 1);
    await roller(store).rollNow();
    expect(await store.telemetry.pruneBefore(NOW)).toBe(0);
    expect(await store.telemetry.pruneBefore(later)).toBe(shardOf('globex') === shard ? 0 : 1);
    expect(await batchCount(store.db)).toBe(0);
  });

  it('gives the engine a bounded roll-up: nothing past its budget, and no waiting for a roll already running', async () => {
    const store = await open();
    for (let i = 0; i < 5; i++) await record(store, 'acme', [event('call', NOW - i * SECOND)], NOW);
    const job = roller(store, { pageSize: 1 });
    // A spent budget folds nothing; the batches stay for the next roll.
    expect(await job.rollNow({ budgetMs: 0 })).toBe(0);
    const running = job.rollNow();
    // While a full roll runs, the engine's call returns at once instead of queueing behind it.
    expect(await job.rollNow({ budgetMs: 10_000 })).toBe(0);
    expect(await running).toBe(5);
    expect(await job.rollNow({ budgetMs: 10_000 })).toBe(0);
    expect((await storedRows(store.db)).telemetry_minutes[keyOf('acme', '', NOW / 1000)]?.counts.call).toBe(5);
  });
});

describe(`roll-ups across restarts (${testDatabaseKind})`, () => {
  const clock = testClock(NOW);
  let server: TestServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('keeps rolled rows over a restart of the service and goes on from rolled_seq without counting a batch twice', async () => {
    clock.set(NOW);
    server = await startTestServer({ clock, dir });
    const send = async (events: unknown[]) => expect((await server!.request('POST', '/v1/telemetry/events', { body: { events } })).status).toBe(202);
    await send([{ type: 'call', project_id: 'p1' }, { type: 'turn', latency_ms: 250 }]);
    await server.service.rollups.rollNow();
    await send([{ type: 'call', project_id: 'p1', timestamp: iso(NOW - 5 * SECOND) }]);
    // Closed with the second batch stored and (perhaps) not rolled up.
    await server.close();
    server = await startTestServer({ clock, dir });
    await send([{ type: 'call' }]);
    await server.service.rollups.rollNow();
    await server.service.rollups.rollNow();
    const rows = await storedRows(server.service.store.db);
    const minute = NOW / 1000;
    const acme = (await server.service.store.accounts.ensure('acme', iso(NOW))).id;
    expect(rows.telemetry_minutes[keyOf(acme, '', minute)]).toEqual({
      counts: { call: 3, call_crash: 0, turn: 1, api_error: 0, function_error: 0 },
      latencies: [binOf(250), 1],
    });
    expect(rows.telemetry_minutes[keyOf(acme, 'p1', minute)]?.counts.call).toBe(2);
    expect(rows.telemetry_seconds[keyOf(acme, '', minute)]?.counts.call).toBe(2);
    expect(rows.telemetry_seconds[keyOf(acme, '', minute - 5)]?.counts.call).toBe(1);
  });

  it('rolls up and prunes as the engine prunes batches: an old batch goes once its roll-up is stored', async () => {
    clock.set(NOW);
    server = await startTestServer({ clock, dir });
    expect((await server.request('POST', '/v1/telemetry/events', { body: { events: [{ type: 'api_error' }] } })).status).toBe(202);
    for (let at = NOW; at <= NOW + 70 * MINUTE; at += 5 * MINUTE) {
      clock.set(at);
      await server.service.engine.tick();
    }
    expect(await batchCount(server.service.store.db)).toBe(0);
    const acme = (await server.service.store.accounts.ensure('acme', iso(NOW))).id;
    expect((await storedRows(server.service.store.db)).telemetry_minutes[keyOf(acme, '', NOW / 1000)]?.counts.api_error).toBe(1);
  });
});

describe(`kill -9 of alerts serve (${testDatabaseKind})`, () => {
  const apiKey = 'bootstrap_' + randomBytes(24).toString('hex');
  const serve = () =>
    startCliServer({ cwd: dir, env: { DATABASE_URL: url, ALERTS_BOOTSTRAP_API_KEY: apiKey, ALERTS_DELIVERY_WORKER: 'off', LOG_LEVEL: 'warn' } });
  const post = async (server: CliServer, events: unknown[]) => {
    const res = await fetch(`${server.baseUrl}/v1/telemetry/events`, {
      method: 'POST',
      headers: { 'x-api-key': apiKey, 'content-type': 'application/json' },
      body: JSON.stringify({ events }),
    });
    expect(res.status, await res.text()).toBe(202);
  };
  const readDb = async <T>(fn: (db: Kysely<Database>) => Promise<T>): Promise<T> => {
    const db = inspectDatabase(url);
    try {
      return await fn(db);
    } finally {
      await db.destroy();
    }
  };
  /** The rows the batches up to `throughSeq` of the shard make, folded in one go. */
  const rowsThrough = (db: Kysely<Database>, shard: number, throughSeq: number) =>
    db
      .selectFrom('telemetry_batches')
      .select(['shard_seq', 'shard', 'account_id', 'received_at', 'deltas'])
      .where('shard', '=', shard)
      .where('shard_seq', '<=', throughSeq)
      .orderBy('shard_seq')
      .execute()
      .then((batches) => {
        const { seconds, minutes } = rowsOf(batches);
        const shape = (rows: typeof seconds) =>
          Object.fromEntries(rows.map((r) => [keyOf(r.accountId, r.project, r.second), { counts: r.counts, latencies: [...r.latencies] }]));
        return { telemetry_seconds: shape(seconds), telemetry_minutes: shape(minutes) };
      });

  it('keeps the roll-ups of a killed server consistent with rolled_seq, and the next server rolls the rest once', async () => {
    const first = await serve();
    const account = await readDb(async (db) => (await db.selectFrom('accounts').select('id').where('name', '=', 'default').executeTakeFirstOrThrow()).id);
    const shard = shardOf(account);
    const start = Date.now();
    let sent = 0;
    // Batches over about 3 s: some are rolled up (every 2 s) before the kill, the last ones not.
    while (Date.now() - start < 3000) {
      await post(first, [{ type: 'call', project_id: 'p1' }, { type: 'turn', latency_ms: 100 + (sent % 50) * 13 }]);
      sent++;
    }
    await first.stop('SIGKILL');

    await readDb(async (db) => {
      const rolled = await rolledSeq(db, shard);
      expect(rolled).toBeGreaterThan(0);
      expect(await batchCount(db)).toBe(sent);
      // What was committed as rolled is exactly the batches through rolled_seq: all or nothing.
      expect(await storedRows(db)).toEqual(await rowsThrough(db, shard, rolled));
    });

    const second = await serve();
    await post(second, [{ type: 'call' }]);
    sent++;
    const deadline = Date.now() + 10_000;
    while ((await readDb((db) => rolledSeq(db, shard))) < sent && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await readDb(async (db) => {
      expect(await rolledSeq(db, shard)).toBe(sent);
      const rows = await storedRows(db);
      expect(rows).toEqual(await rowsThrough(db, shard, sent));
      const calls = Object.entries(rows.telemetry_minutes)
        .filter(([key]) => key.startsWith(`${account}//`))
        .reduce((n, [, r]) => n + r.counts.call, 0);
      expect(calls).toBe(sent);
    });
    expect((await second.stop()).code).toBe(0);
  });
});

describe.skipIf(!onPostgres)('roll-ups in a cluster (PostgreSQL)', () => {
  it('rolls every account up once while two instances share the shards, and after one is killed', async () => {
    const accounts: { key: string; id: string }[] = [];
    for (let i = 0; i < 6; i++) {
      const created = await runCli(['keys', 'create', '--account', `acct${i}`], { cwd: dir, env: { DATABASE_URL: url } });
      expect(created.code, created.stderr).toBe(0);
      accounts.push({ key: lastLine(created.stdout), id: '' });
    }
    const db = inspectDatabase(url);
    cleanups.push(() => db.destroy());
    for (const [i, account] of accounts.entries()) {
      account.id = (await db.selectFrom('accounts').select('id').where('name', '=', `acct${i}`).executeTakeFirstOrThrow()).id;
    }
    const cluster = await startCluster(2, { databaseUrl: url, cwd: dir, webhooks: false });
    const sent = new Map<string, number>();
    const send = async (via: number, round: number) => {
      for (const [i, account] of accounts.entries()) {
        const events = Array.from({ length: i + round + 1 }, () => ({ type: 'call', project_id: 'p1' }));
        const res = await request(cluster[via]!, 'POST', '/v1/telemetry/events', { events }, { 'x-api-key': account.key });
        expect(res.status, res.text).toBe(202);
        sent.set(account.id, (sent.get(account.id) ?? 0) + events.length);
      }
    };
    const allRolled = async () => {
      const progress = await db.selectFrom('telemetry_rollup_progress as p').innerJoin('shard_sequences as s', 's.shard', 'p.shard').select(['p.rolled_seq', 's.last_seq']).execute();
      return progress.every((p) => Number(p.rolled_seq) === Number(p.last_seq));
    };
    const calls = async () => {
      const rows = await storedRows(db);
      return accounts.map((a) =>
        ['', 'p1'].map((project) =>
          Object.entries(rows.telemetry_minutes)
            .filter(([key]) => key.startsWith(`${a.id}/${project}/`))
            .reduce((n, [, r]) => n + r.counts.call, 0),
        ),
      );
    };
    const expected = () => accounts.map((a) => [sent.get(a.id)!, sent.get(a.id)!]);
    const settle = async () => {
      const deadline = Date.now() + 15_000;
      while (!(await allRolled()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(await allRolled()).toBe(true);
    };

    await send(0, 0);
    await send(1, 1);
    await settle();
    expect(await calls()).toEqual(expected());

    // Killed with batches perhaps unrolled: the survivor takes its shards and rolls them, once.
    await send(0, 2);
    await cluster[0]!.kill9();
    await send(1, 3);
    await settle();
    expect(await calls()).toEqual(expected());
    await cluster[1]!.stop();
  });
});
