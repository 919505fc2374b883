import { WINDOW_DURATIONS, WINDOW_MS, type WindowDuration } from '../domain/alert-rules.js';
import { COUNTERS, emptyCounts, MAX_AGE_MS, MAX_FUTURE_MS, type Counter, type TelemetryEvent } from '../domain/telemetry.js';
import { addLatency, LatencyHistogram, type SparseBins } from './latency-histogram.js';

/**
 * What one batch adds to one (project, second): the unit that is stored durably and
 * replayed after a restart. `project` null means no project was given.
 */
export interface SecondDelta {
  project: string | null;
  second: number;
  counts: Record<Counter, number>;
  latencies: SparseBins;
}


/** Adds a delta's counters and latencies to a running sum (of seconds, or of scopes). */
export function addDelta(sum: Pick<SecondDelta, 'counts' | 'latencies'>, delta: Pick<SecondDelta, 'counts' | 'latencies'>): void {
  for (const c of COUNTERS) sum.counts[c] += delta.counts[c];
  for (const [bin, n] of delta.latencies) sum.latencies.set(bin, (sum.latencies.get(bin) ?? 0) + n);
}

/** Folds a batch of events into per-(project, second) deltas. */
export function deltasOf(events: readonly TelemetryEvent[]): SecondDelta[] {
  const byProject = new Map<string | null, Map<number, SecondDelta>>();
  const deltas: SecondDelta[] = [];
  for (const event of events) {
    const second = Math.floor(event.time / 1000);
    let bySecond = byProject.get(event.project_id);
    if (!bySecond) byProject.set(event.project_id, (bySecond = new Map()));
    let delta = bySecond.get(second);
    if (!delta) {
      delta = { project: event.project_id, second, counts: emptyCounts(), latencies: new Map() };
      bySecond.set(second, delta);
      deltas.push(delta);
    }
    delta.counts[event.type] += 1;
    if (event.latency_ms !== null) addLatency(delta.latencies, event.latency_ms);
  }
  return deltas;
}

/** Compact, stable JSON form of deltas: [project, second, c, cc, t, ae, fe, [bin, n, ...]]. */
export function encodeDeltas(deltas: readonly SecondDelta[]): string {
  const rows = deltas.map((d) => {
    const pairs: number[] = [];
    for (const [bin, n] of d.latencies) pairs.push(bin, n);
    const c = d.counts;
    return [d.project, d.second, c.call, c.call_crash, c.turn, c.api_error, c.function_error, pairs];
  });
  return JSON.stringify(rows);
}

export function decodeDeltas(text: string): SecondDelta[] {
  const rows = JSON.parse(text) as [string | null, number, ...number[]][];
  return rows.map((row) => {
    const counts = emptyCounts();
    COUNTERS.forEach((c, i) => (counts[c] = row[2 + i] as number));
    const flat = row[2 + COUNTERS.length] as unknown as number[];
    const latencies: SparseBins = new Map();
    for (let i = 0; i < flat.length; i += 2) latencies.set(flat[i]!, flat[i + 1]!);
    return { project: row[0], second: row[1], counts, latencies };
  });
}

/**
 * One second of one scope, as a flat array to keep memory low with many scopes (a Map and
 * two objects per second cost several times more): the COUNTERS in order, then
 * [bin, count] pairs of the latencies, sorted by bin.
 */
type Bucket = number[];
const PAIRS_AT = COUNTERS.length;

/** Where `bin` is, or would go, among a bucket's pairs: a binary search. */
function pairAt(bucket: Bucket, bin: number): number {
  let lo = 0;
  let hi = (bucket.length - PAIRS_AT) / 2;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (bucket[PAIRS_AT + 2 * mid]! < bin) lo = mid + 1;
    else hi = mid;
  }
  return PAIRS_AT + 2 * lo;
}

/**
 * Adds latencies to a bucket. Bins it has are counted in place; if some are new, the result
 * is a new bucket of the exact length with them merged in (push would leave room for 16 more
 * numbers: 2.4 times the memory of a bucket with one latency), else the same bucket.
 */
function withLatencies(bucket: Bucket, latencies: SparseBins): Bucket {
  let missing: number[] | undefined;
  for (const [bin, n] of latencies) {
    const at = pairAt(bucket, bin);
    if (at < bucket.length && bucket[at] === bin) bucket[at + 1]! += n;
    else (missing ??= []).push(bin);
  }
  if (!missing) return bucket;
  missing.sort((a, b) => a - b);
  const merged = new Array<number>(bucket.length + 2 * missing.length);
  for (let k = 0; k < PAIRS_AT; k++) merged[k] = bucket[k]!;
  let out = PAIRS_AT;
  let at = PAIRS_AT;
  for (const bin of missing) {
    for (; at < bucket.length && bucket[at]! < bin; at += 2) {
      merged[out++] = bucket[at]!;
      merged[out++] = bucket[at + 1]!;
    }
    merged[out++] = bin;
    merged[out++] = latencies.get(bin)!;
  }
  for (; at < bucket.length; at += 2) {
    merged[out++] = bucket[at]!;
    merged[out++] = bucket[at + 1]!;
  }
  return merged;
}

interface Window {
  seconds: number;
  counts: Record<Counter, number>;
  histogram: LatencyHistogram;
}

const WINDOW_SECONDS: Record<WindowDuration, number> = {
  '5m': WINDOW_MS['5m'] / 1000,
  '10m': WINDOW_MS['10m'] / 1000,
  '60m': WINDOW_MS['60m'] / 1000,
};
const LONGEST_WINDOW_SECONDS = MAX_AGE_MS / 1000;
const FUTURE_SECONDS = MAX_FUTURE_MS / 1000;

/**
 * Per-second buckets of one scope (an account, or one project of it) and the running sums
 * of its three windows. A window at head second H covers the seconds (H - length, H]:
 * windows are resolved to whole seconds, so an event exactly a window old is out.
 *
 * An account scope holds the seconds of all its events, with or without a project: its
 * totals. A project scope holds only its project's, and exists only while a rule refers to
 * the project (see scope-registry.ts).
 */
export class ScopeAggregates {
  private readonly buckets = new Map<number, Bucket>();
  private readonly windows: Record<WindowDuration, Window>;
  private head: number;
  /** Receipt time (epoch ms) of the scope's latest telemetry. */
  lastSeenAt: number;

  constructor(headSecond: number, lastSeenAt: number) {
    this.head = headSecond;
    this.lastSeenAt = lastSeenAt;
    this.windows = Object.fromEntries(
      WINDOW_DURATIONS.map((w) => [w, { seconds: WINDOW_SECONDS[w], counts: emptyCounts(), histogram: new LatencyHistogram() }]),
    ) as Record<WindowDuration, Window>;
  }

  get isEmpty(): boolean {
    return this.buckets.size === 0;
  }

  /** Stores a second's delta here and counts it in the windows it falls in. */
  add(delta: SecondDelta): void {
    if (!this.accepts(delta.second)) return;
    const stored = this.buckets.get(delta.second);
    const bucket = stored ?? COUNTERS.map(() => 0);
    COUNTERS.forEach((c, i) => (bucket[i]! += delta.counts[c]));
    const grown = withLatencies(bucket, delta.latencies);
    if (grown !== stored) this.buckets.set(delta.second, grown);
    this.countInWindows(delta);
  }

  /** Moves the head to `second`: seconds entering the windows are added, leaving ones removed. */
  advance(second: number): void {
    if (second <= this.head) return;
    const from = this.head;
    this.head = second;
    const buckets = this.buckets;
    // After a long idle period only the stored buckets matter, not every second in between.
    const sparse = second - from > buckets.size;
    const each = (lo: number, hi: number, visit: (bucket: Bucket) => void) => {
      if (sparse) {
        for (const [s, bucket] of buckets) if (s > lo && s <= hi) visit(bucket);
      } else {
        for (let s = lo + 1; s <= hi; s++) {
          const bucket = buckets.get(s);
          if (bucket) visit(bucket);
        }
      }
    };
    for (const window of Object.values(this.windows)) {
      each(from, second, (bucket) => this.applyTo(window, bucket, 1));
      each(from - window.seconds, second - window.seconds, (bucket) => this.applyTo(window, bucket, -1));
    }
  }

  /** Drops seconds older than the longest window: they are never read again. */
  prune(second: number): void {
    for (const s of this.buckets.keys()) if (s <= second - LONGEST_WINDOW_SECONDS - 1) this.buckets.delete(s);
  }

  count(counter: Counter, window: WindowDuration): number {
    return this.windows[window].counts[counter];
  }

  quantile(q: number, window: WindowDuration): number | undefined {
    return this.windows[window].histogram.quantile(q);
  }

  /** A late event inside a window counts at once; a future one waits for the head. */
  private countInWindows(delta: SecondDelta): void {
    for (const window of Object.values(this.windows)) {
      if (delta.second > this.head - window.seconds && delta.second <= this.head) {
        for (const c of COUNTERS) window.counts[c] += delta.counts[c];
        if (delta.latencies.size > 0) window.histogram.apply(delta.latencies, 1);
      }
    }
  }

  private accepts(second: number): boolean {
    return second > this.head - LONGEST_WINDOW_SECONDS && second <= this.head + FUTURE_SECONDS + 1;
  }

  private applyTo(window: Window, bucket: Bucket, sign: 1 | -1): void {
    COUNTERS.forEach((c, i) => (window.counts[c] += sign * bucket[i]!));
    if (bucket.length > PAIRS_AT) window.histogram.applyPairs(bucket, PAIRS_AT, sign);
  }
}
