/**
 * The `series` part of `npm run bench:engine`: rule series and previews of one busy scope,
 * each side by side with a plain read of the same rows from the database.
 *
 *   preview  POST /v1/alert-rules/preview over 24 hours at 60 s (1,440 points) of a 60m p95
 *            rule: 25 hours of per-minute rows plus the last 2 hours per second.
 *   series   GET /v1/alert-rules/{id}/series for the last hour at 10 s (360 points) of the
 *            same rule: 2 hours of per-second rows (the hour and the first point's window).
 *
 * Each request goes through the whole service in-process (app.inject: routing, validation,
 * the database read, the computation, JSON), on a fresh database per kind.
 */
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { loadConfig } from '../src/config.js';
import { toIso, type Clock } from '../src/domain/clock.js';
import { binOf } from '../src/engine/latency-histogram.js';
import { createLogger } from '../src/logger.js';
import { createService } from '../src/service.js';
import { createRng, sampleLatency } from '../src/simulator/voice-agent-simulator.js';
import type { TelemetryRollupTable } from '../src/store/schema.js';
import { fmtMs, fmtNumber as fmt, percentile, table, verdict } from './helpers.js';

const WARM_UP = 5;
const ITERATIONS = 50;
/** The busy scope, per second: calls, turns (each with a latency) and an API error now and then. */
const CALLS_PER_S = 5;
const TURNS_PER_S = 20;
const HOUR_S = 3600;

export interface SeriesBenchResult {
  label: string;
  rows: { minutes: number; seconds: number };
  /** [ours ms..., plain read ms...] per request kind. */
  preview: { ours: number[]; plain: number[]; points: number };
  series: { ours: number[]; plain: number[]; points: number };
}

type Row = TelemetryRollupTable;

function rowOf(accountId: string, second: number, seconds: number, rng: () => number): Row {
  const bins = new Map<number, number>();
  for (let i = 0; i < TURNS_PER_S * seconds; i++) {
    const bin = binOf(sampleLatency(rng));
    bins.set(bin, (bins.get(bin) ?? 0) + 1);
  }
  return {
    account_id: accountId,
    project_key: '',
    second,
    call: CALLS_PER_S * seconds,
    call_crash: 0,
    turn: TURNS_PER_S * seconds,
    api_error: Math.floor(rng() * 2 * seconds),
    function_error: 0,
    latencies: JSON.stringify([...bins].sort((a, b) => a[0] - b[0]).flat()),
  };
}

async function timed(n: number, run: () => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < WARM_UP; i++) await run();
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const start = performance.now();
    await run();
    ms.push(performance.now() - start);
  }
  return ms;
}

/** Child: fills a fresh database (the parent made it and drops it) and times both requests. */
export async function seriesChild(databaseUrl: string, label: string): Promise<void> {
  const now = Math.floor(Date.now() / 60_000) * 60_000;
  const clock: Clock = { now: () => now };
  const config = loadConfig({
    DATABASE_URL: databaseUrl,
    LOG_LEVEL: 'silent',
    HOST: '127.0.0.1',
    PORT: '0',
    ALERTS_EVALUATION_INTERVAL_MS: '0',
    ALERTS_DELIVERY_WORKER: 'off',
  });
  const service = await createService({ config, logger: createLogger('silent'), clock });
  const { key, record } = await service.apiKeys.create('busy');
  const accountId = record.account_id;
  const db = service.store.db;
  const rng = createRng(17);

  // 26 hours per minute (each the sum of its seconds where those are kept), the last 2 hours per second.
  const nowS = now / 1000;
  const cutoff = nowS - 2 * HOUR_S;
  const seconds: Row[] = [];
  for (let s = cutoff + 1; s <= nowS; s++) seconds.push(rowOf(accountId, s, 1, rng));
  const minutes: Row[] = [];
  for (let m = nowS - 26 * HOUR_S; m <= cutoff; m += 60) minutes.push(rowOf(accountId, m, 60, rng));
  for (let m = cutoff + 60; m <= nowS; m += 60) {
    const bins = new Map<number, number>();
    const sum: Row = { ...rowOf(accountId, m, 0, rng), call: 0, turn: 0, api_error: 0 };
    for (const r of seconds.slice(m - 60 - cutoff, m - cutoff)) {
      sum.call += r.call;
      sum.turn += r.turn;
      sum.api_error += r.api_error;
      const flat = JSON.parse(r.latencies) as number[];
      for (let i = 0; i < flat.length; i += 2) bins.set(flat[i]!, (bins.get(flat[i]!) ?? 0) + flat[i + 1]!);
    }
    minutes.push({ ...sum, latencies: JSON.stringify([...bins].sort((a, b) => a[0] - b[0]).flat()) });
  }
  for (const [tableName, rows] of [['telemetry_seconds', seconds], ['telemetry_minutes', minutes]] as const) {
    for (let i = 0; i < rows.length; i += 500) await db.insertInto(tableName).values(rows.slice(i, i + 500)).execute();
  }

  const inject = async (method: 'GET' | 'POST', url: string, payload?: unknown) => {
    const res = await service.app.inject({ method, url, headers: { 'x-api-key': key, 'content-type': 'application/json' }, payload: payload as object });
    if (res.statusCode >= 300) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body}`);
    return res.json() as { points: unknown[] };
  };
  const rule = { name: 'busy p95', project_id: null, metric: 'turn_latency_p95', operator: '>', threshold_value: 1200, window_duration: '60m' } as const;
  const { id } = (await inject('POST', '/v1/alert-rules', rule)) as unknown as { id: string };

  const plainRead = (table: 'telemetry_seconds' | 'telemetry_minutes', after: number, through: number) =>
    db
      .selectFrom(table)
      .select(['second', 'call', 'call_crash', 'turn', 'api_error', 'function_error', 'latencies'])
      .where('account_id', '=', accountId)
      .where('project_key', '=', '')
      .where('second', '>', after)
      .where('second', '<=', through)
      .orderBy('second')
      .execute();

  // The preview's rows: the first point's hour-long window before the day, per minute up to the cutoff.
  const previewBody = { ...rule, from: toIso(now - 24 * HOUR_S * 1000), to: toIso(now), step: '60s' };
  const previewPoints = (await inject('POST', '/v1/alert-rules/preview', previewBody)).points.length;
  const preview = {
    ours: await timed(ITERATIONS, () => inject('POST', '/v1/alert-rules/preview', previewBody)),
    plain: await timed(ITERATIONS, () => Promise.all([plainRead('telemetry_minutes', nowS - 25 * HOUR_S + 60, cutoff), plainRead('telemetry_seconds', cutoff, nowS)])),
    points: previewPoints,
  };
  const seriesUrl = `/v1/alert-rules/${id}/series`;
  const seriesPoints = (await inject('GET', seriesUrl)).points.length;
  const series = {
    ours: await timed(ITERATIONS, () => inject('GET', seriesUrl)),
    plain: await timed(ITERATIONS, () => plainRead('telemetry_seconds', nowS - 2 * HOUR_S + 10, nowS)),
    points: seriesPoints,
  };
  await service.close();
  const result: SeriesBenchResult = { label, rows: { minutes: minutes.length, seconds: seconds.length }, preview, series };
  process.stdout.write(JSON.stringify(result) + '\n');
}

/** The report of the children's results, one per database. */
export function seriesReport(results: SeriesBenchResult[]): string {
  const stats = (ms: number[]) => {
    const sorted = Float64Array.from(ms).sort();
    return { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) };
  };
  const rows: string[][] = [];
  let met = true;
  for (const r of results) {
    for (const [name, figure, target] of [
      [`preview, 24 h at 60 s (${fmt(r.preview.points)} points)`, r.preview, 200],
      [`series, last hour at 10 s (${fmt(r.series.points)} points)`, r.series, 50],
    ] as const) {
      const ours = stats(figure.ours);
      const plain = stats(figure.plain);
      met &&= ours.p50 < target && ours.p99 < target;
      rows.push([
        r.label,
        name,
        `${fmtMs(ours.p50)} / ${fmtMs(ours.p99)}`,
        `${fmtMs(plain.p50)} / ${fmtMs(plain.p99)}`,
        `${(ours.p50 / plain.p50).toFixed(1)}x`,
        `< ${target} ms: p50 ${verdict(ours.p50 < target)}, p99 ${verdict(ours.p99 < target)}`,
      ]);
    }
  }
  const first = results[0]!;
  return [
    `Series and previews: one busy account (${CALLS_PER_S} calls and ${TURNS_PER_S} turns a second), a 60m p95 rule; ` +
      `${fmt(first.rows.minutes)} per-minute rows (26 h) and ${fmt(first.rows.seconds)} per-second rows (the last 2 h); ` +
      `${ITERATIONS} requests each after ${WARM_UP} warm-up, through the service in-process (app.inject)`,
    table(['database', 'request', 'ours p50 / p99 ms', 'plain read of the same rows p50 / p99 ms', 'ours / plain (p50)', 'target'], rows),
    `targets (p50 and p99): ${verdict(met)}; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} on ${cpus().length} CPUs`,
  ].join('\n');
}
