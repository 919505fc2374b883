/**
 * `npm run bench:storage`: the disk cost of telemetry kept beyond the evaluator's hour.
 *
 * BENCH_ACCOUNTS accounts (default 10) each send a batch every second for a simulated day,
 * every event with one project: each account is 2 active scopes (the account as a whole,
 * project '', and its project), whose rows hold the same telemetry. Traffic per account per
 * second (Poisson): 0.2 calls, 3 turns with log-normal latencies (median 800 ms, sigma 0.5,
 * 1% slow ones around 6 s), rare crashes and errors.
 *
 * The roll-up is driven through its port (TelemetryRollupRepository.fold), with the rows
 * the roll-up job makes of the batches (rowsOf): a day of minute rows (1,440 per scope) and
 * the last 125 minutes of second rows (PER_SECOND_RETENTION_MS, what is held at any time).
 * Raw batches (telemetry_batches, kept 65 minutes) are measured on a 10-minute sample stored
 * through TelemetryRepository.record and scaled. Sizes: SQLite, after VACUUM, the pages of each
 * table and its indexes (dbstat); PostgreSQL, after VACUUM, pg_total_relation_size (heap,
 * indexes, TOAST). Each database is fresh (bench/helpers.ts).
 */
import { cpus } from 'node:os';
import { sql } from 'kysely';
import { parseDatabaseUrl } from '../src/config.js';
import { systemClock } from '../src/domain/clock.js';
import type { StoredBatch } from '../src/domain/ports/telemetry-repository.js';
import { shardOf } from '../src/domain/shards.js';
import { PER_SECOND_RETENTION_MS, type TelemetryEvent } from '../src/domain/telemetry.js';
import type { RollupRow } from '../src/domain/telemetry-rollups.js';
import { deltasOf, encodeDeltas } from '../src/engine/aggregates.js';
import { REPLAY_MS } from '../src/engine/scope-registry.js';
import { createTelemetryRollups, rowsOf } from '../src/engine/telemetry-rollup.js';
import { createLogger } from '../src/logger.js';
import { openStore, type Store } from '../src/store/store.js';
import { benchDatabases, fmtNumber, percentile, table, withFreshDatabase, type DatabaseKind } from './helpers.js';

const ACCOUNTS = Number(process.env.BENCH_ACCOUNTS ?? 10);
const SCOPES = 2 * ACCOUNTS;
const DAY_SECONDS = 86_400;
const SECONDS_KEPT = PER_SECOND_RETENTION_MS / 1000;
const BATCH_SAMPLE_SECONDS = 600;
const DAY_START = Date.parse('2026-03-15T00:00:00.000Z') / 1000;

// ---------------------------------------------------------------- traffic

let seed = 20_260_315;
const random = () => {
  seed = (Math.imul(seed, 1_664_525) + 1_013_904_223) >>> 0;
  return (seed + 0.5) / 4_294_967_296;
};
function poisson(mean: number): number {
  const limit = Math.exp(-mean);
  let k = 0;
  for (let p = random(); p > limit; p *= random()) k++;
  return k;
}
const normal = () => Math.sqrt(-2 * Math.log(random())) * Math.cos(2 * Math.PI * random());
const latency = () => Math.min(3_600_000, Math.round((random() < 0.01 ? 6000 : 800) * Math.exp(0.5 * normal())));

/** One account's batch of one second: what a client sending every second posts. */
function batchOf(accountId: string, project: string, second: number, seq: number): StoredBatch {
  const time = second * 1000;
  const events: TelemetryEvent[] = [];
  const add = (type: TelemetryEvent['type'], n: number) => {
    for (let i = 0; i < n; i++) events.push({ type, project_id: project, time: time + Math.floor(random() * 1000), latency_ms: type === 'turn' ? latency() : null });
  };
  add('call', poisson(0.2));
  add('turn', poisson(3));
  add('call_crash', random() < 0.002 ? 1 : 0);
  add('api_error', poisson(0.02));
  add('function_error', poisson(0.01));
  return { shard: shardOf(accountId), shard_seq: seq, account_id: accountId, received_at: time + 200, deltas: encodeDeltas(deltasOf(events)) };
}

interface Fold {
  shard: number;
  seconds: readonly RollupRow[];
  minutes: readonly RollupRow[];
}

/** The folds of a simulated day, an hour of an account at a time, and a sample of raw batches. */
function simulateDay(): { folds: Fold[]; sample: StoredBatch[]; rows: { seconds: number; minutes: number } } {
  const folds: Fold[] = [];
  const sample: StoredBatch[] = [];
  const rows = { seconds: 0, minutes: 0 };
  const secondsFrom = DAY_START + DAY_SECONDS - SECONDS_KEPT;
  for (let a = 0; a < ACCOUNTS; a++) {
    const accountId = `acct_bench_${a}`;
    const project = `proj_${a}`;
    for (let hour = 0; hour < 24; hour++) {
      const batches: StoredBatch[] = [];
      // Seconds 1..3600 of the hour: the hour's 60 minute rows are whole (a row ends at its minute).
      for (let s = 1; s <= 3600; s++) batches.push(batchOf(accountId, project, DAY_START + hour * 3600 + s, 0));
      const { seconds, minutes } = rowsOf(batches);
      const kept = seconds.filter((r) => r.second > secondsFrom);
      folds.push({ shard: shardOf(accountId), seconds: kept, minutes });
      rows.seconds += kept.length;
      rows.minutes += minutes.length;
      if (hour === 23) sample.push(...batches.slice(-BATCH_SAMPLE_SECONDS));
    }
  }
  return { folds, sample, rows };
}

// ---------------------------------------------------------------- measuring

type Sizes = Record<'telemetry_seconds' | 'telemetry_minutes' | 'telemetry_batches', number>;

async function tableBytes(store: Store, kind: DatabaseKind): Promise<Sizes> {
  const tables = ['telemetry_seconds', 'telemetry_minutes', 'telemetry_batches'] as const;
  await sql`vacuum`.execute(store.db);
  const sizes = {} as Sizes;
  for (const name of tables) {
    if (kind === 'postgres') {
      const { rows } = await sql<{ bytes: string }>`select pg_total_relation_size(${name}::regclass)::text as bytes`.execute(store.db);
      sizes[name] = Number(rows[0]!.bytes);
    } else {
      // The table's b-tree and those of its indexes (named after it by SQLite or by us).
      const { rows } = await sql<{ bytes: number }>`
        select coalesce(sum(pgsize), 0) as bytes from dbstat
        where name = ${name} or name in (select name from sqlite_master where type = 'index' and tbl_name = ${name})`.execute(store.db);
      sizes[name] = Number(rows[0]!.bytes);
    }
  }
  return sizes;
}

async function measure(kind: DatabaseKind, url: string, day: ReturnType<typeof simulateDay>): Promise<{ sizes: Sizes; foldMs: number }> {
  const store = await openStore({ location: parseDatabaseUrl(url, process.cwd()) });
  try {
    const rolled = new Map<number, number>();
    const started = performance.now();
    for (const fold of day.folds) {
      const from = rolled.get(fold.shard) ?? 0;
      if (!(await store.telemetryRollups.fold(fold.shard, from, from + 1, fold))) throw new Error('fold refused');
      rolled.set(fold.shard, from + 1);
    }
    const foldMs = performance.now() - started;
    for (let i = 0; i < day.sample.length; i += 200) {
      await store.telemetry.record(
        day.sample.slice(i, i + 200).map((b) => ({ accountId: b.account_id, receivedAt: b.received_at, deltas: b.deltas, projects: [`proj_${b.account_id.split('_').at(-1)}`] })),
      );
    }
    return { sizes: await tableBytes(store, kind), foldMs };
  } finally {
    await store.close();
  }
}

const CADENCE_ACCOUNTS = Number(process.env.BENCH_CADENCE_ACCOUNTS ?? 1000);
const CADENCE_PASSES = 6;

/**
 * The roll-up job at its own cadence: each pass finds 2 s of batches of CADENCE_ACCOUNTS
 * accounts (a batch per account per second) and folds them (rollNow: progress, reads, folds
 * of every shard). Returns the median pass in ms: the roll-up keeps up while it is well
 * under the 2 s interval.
 */
async function cadence(url: string): Promise<{ medianMs: number; rows: number }> {
  const store = await openStore({ location: parseDatabaseUrl(url, process.cwd()) });
  try {
    const job = createTelemetryRollups({ rollups: store.telemetryRollups, clock: systemClock, logger: createLogger('silent'), telemetryRetentionMs: null, intervalMs: 0 });
    const times: number[] = [];
    for (let pass = 0; pass < CADENCE_PASSES; pass++) {
      const batches: StoredBatch[] = [];
      for (let a = 0; a < CADENCE_ACCOUNTS; a++) {
        for (const s of [0, 1]) batches.push(batchOf(`acct_cadence_${a}`, `proj_${a}`, DAY_START + 2 * pass + s, 0));
      }
      for (let i = 0; i < batches.length; i += 200) {
        await store.telemetry.record(batches.slice(i, i + 200).map((b) => ({ accountId: b.account_id, receivedAt: b.received_at, deltas: b.deltas, projects: [] })));
      }
      const started = performance.now();
      if ((await job.rollNow()) !== batches.length) throw new Error('a pass did not fold every batch');
      times.push(performance.now() - started);
    }
    const rows = (await sql<{ n: number }>`select count(*) as n from telemetry_minutes`.execute(store.db)).rows[0]!.n;
    return { medianMs: percentile(times.sort((a, b) => a - b), 0.5), rows: Number(rows) };
  } finally {
    await store.close();
  }
}

const mb = (bytes: number) => `${fmtNumber(bytes / 1024 / 1024, 2)} MB`;

async function main(): Promise<void> {
  const startedAt = Date.now();
  const databases = await benchDatabases();
  const simulateStart = performance.now();
  const day = simulateDay();
  const simulateMs = performance.now() - simulateStart;
  const minuteRowsPerScopeDay = day.rows.minutes / SCOPES;
  const secondRowsPerScope = day.rows.seconds / SCOPES;
  const sampleBatches = day.sample.length;

  const lines: string[] = [];
  const rows: string[][] = [];
  for (const kind of databases.kinds) {
    const { sizes, foldMs } = await withFreshDatabase(kind, databases, (db) => measure(kind, db.url, day));
    const label = kind === 'sqlite' ? 'SQLite' : 'PostgreSQL';
    const minutePerScopeDay = sizes.telemetry_minutes / SCOPES;
    const secondsHeldPerScope = sizes.telemetry_seconds / SCOPES;
    const batchBytes = sizes.telemetry_batches / sampleBatches;
    // One batch per account-second; an account here is 2 scopes.
    const rawPerScopeDay = (batchBytes * DAY_SECONDS) / 2;
    const rawHeldPerScope = (batchBytes * (REPLAY_MS / 1000)) / 2;
    const heldPerScope = 7 * minutePerScopeDay + secondsHeldPerScope + rawHeldPerScope;
    rows.push(
      [label, 'telemetry_minutes', `${fmtNumber(minuteRowsPerScopeDay)} a day`, fmtNumber(sizes.telemetry_minutes / day.rows.minutes), mb(minutePerScopeDay), `${mb(7 * minutePerScopeDay)} (7 days)`],
      [label, 'telemetry_seconds', `${fmtNumber(secondRowsPerScope)} held`, fmtNumber(sizes.telemetry_seconds / day.rows.seconds), mb((secondsHeldPerScope * DAY_SECONDS) / SECONDS_KEPT), `${mb(secondsHeldPerScope)} (125 min)`],
      [label, 'telemetry_batches (raw)', `${fmtNumber(DAY_SECONDS / 2)} a day`, fmtNumber(batchBytes), mb(rawPerScopeDay), `${mb(rawHeldPerScope)} (65 min)`],
      [label, 'all, at the defaults', '', '', '', mb(heldPerScope)],
    );
    const pace = await withFreshDatabase(kind, databases, (db) => cadence(db.url));
    lines.push(
      `${label}: a roll-up pass over 2 s of ${fmtNumber(CADENCE_ACCOUNTS)} accounts (${fmtNumber(2 * CADENCE_ACCOUNTS)} batches) takes ${fmtNumber(pace.medianMs)} ms (median of ${CADENCE_PASSES})`,
    );
    lines.push(`${label}: ${fmtNumber(day.folds.length)} folds (${fmtNumber(day.rows.minutes)} minute rows, ${fmtNumber(day.rows.seconds)} second rows) in ${fmtNumber(foldMs / 1000, 1)} s`);
  }

  console.log(`\ntelemetry storage: ${ACCOUNTS} accounts x 2 scopes (account + one project), a batch per account per second for a simulated day`);
  console.log(`node ${process.version}, ${cpus().length} cores; ${databases.note}\n`);
  console.log(
    table(['database', 'table', 'rows per scope', 'bytes per row', 'per scope per day of data', 'on disk per scope, held'], rows),
  );
  console.log(
    '\nper scope: the table\'s bytes (rows and indexes) / scopes. Raw batches: one per account-second, an account being 2 scopes ' +
      '(its batch is the source of both); "per scope per day of data": the bytes a day of it takes if kept a day.',
  );
  console.log(`${lines.join('\n')}\nsimulation ${fmtNumber(simulateMs / 1000, 1)} s; ${((Date.now() - startedAt) / 1000).toFixed(0)} s in all`);
}

await main();
