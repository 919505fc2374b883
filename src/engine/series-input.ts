import type { TelemetryHistory, TelemetryRollupRow } from '../domain/ports/telemetry-history.js';
import type { SeriesPlan } from '../domain/rule-series-service.js';
import { COUNTERS, emptyCounts } from '../domain/telemetry.js';
import { minuteOf } from '../domain/telemetry-rollups.js';
import { addDelta, decodeDeltas, type SecondDelta } from './aggregates.js';
import { BIN_COUNT, type SparseBins } from './latency-histogram.js';

export const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/**
 * The latencies of consecutive rows summed into one dense array, then handed over as
 * SparseBins: a day of a busy scope is thousands of rows, and a Map update per bin (or a
 * JSON.parse per row) was most of a series' time.
 */
class BinSum {
  private readonly counts = new Float64Array(BIN_COUNT);
  private readonly used: number[] = [];

  /** Adds a row's [bin, count, ...] JSON of non-negative integers, read by hand. */
  addText(text: string): void {
    let value = 0;
    let bin = -1;
    let digits = false;
    for (let i = 0; i < text.length; i++) {
      const code = text.charCodeAt(i);
      if (code >= 48 && code <= 57) {
        value = value * 10 + (code - 48);
        digits = true;
        continue;
      }
      if (!digits) continue;
      if (bin < 0) bin = value;
      else {
        if (this.counts[bin] === 0) this.used.push(bin);
        this.counts[bin]! += value;
        bin = -1;
      }
      value = 0;
      digits = false;
    }
  }

  /** The bins summed so far (in no particular order: the scope sorts what it stores); the sum is empty afterwards. */
  take(): SparseBins {
    const bins: SparseBins = new Map();
    for (const bin of this.used) {
      bins.set(bin, this.counts[bin]!);
      this.counts[bin] = 0;
    }
    this.used.length = 0;
    return bins;
  }
}

/** Where a placement is summed: the end of its interval of `grain` seconds on the points' grid. */
export const intervalEnds = (plan: SeriesPlan, grain: number) => {
  const origin = Math.floor(plan.firstAt / 1000);
  return (placement: number) => origin + Math.ceil((placement - origin) / grain) * grain;
};

/** One interval's sum, and the latest placement in it (when the scope was last seen). */
export interface Interval {
  delta: SecondDelta;
  lastSecond: number;
}

/**
 * The rows summed per interval, oldest first, produced as they are consumed: each sum is
 * garbage as soon as the scope has taken it (holding a day of them at once made the garbage
 * collector the largest cost). Minute rows all end at or before the cutoff, second rows after
 * it, so the two lists in turn are in order of placement.
 */
export function* rowIntervals(lists: readonly (readonly TelemetryRollupRow[])[], project: string | null, endOf: (second: number) => number): Generator<Interval> {
  const binSum = new BinSum();
  let counts = emptyCounts();
  let end: number | undefined;
  let lastSecond = 0;
  for (const rows of lists) {
    for (const row of rows) {
      const rowEnd = endOf(row.second);
      if (end !== undefined && rowEnd !== end) {
        yield { delta: { project, second: end, counts, latencies: binSum.take() }, lastSecond };
        counts = emptyCounts();
      }
      end = rowEnd;
      lastSecond = row.second;
      for (const c of COUNTERS) counts[c] += row[c];
      binSum.addText(row.latencies);
    }
  }
  if (end !== undefined) yield { delta: { project, second: end, counts, latencies: binSum.take() }, lastSecond };
}

/**
 * The unrolled batches' deltas of the scope, summed per interval where the rows would hold
 * them (per second after the cutoff, else in the minute row that ends at or after them),
 * oldest first; and their receipt times, when the evaluator saw the scope.
 */
export function batchTelemetry(plan: SeriesPlan, history: TelemetryHistory, endOf: (second: number) => number): { deltas: SecondDelta[]; seen: number[] } {
  const project = plan.condition.project_id;
  const sums = new Map<number, SecondDelta>();
  const seen: number[] = [];
  const quoted = project === null ? '' : JSON.stringify(project);
  for (const batch of history.batches) {
    // Most batches of a busy account are about other projects: skipped undecoded.
    if (project !== null && !batch.deltas.includes(quoted)) continue;
    let touched = false;
    for (const delta of decodeDeltas(batch.deltas)) {
      if (project !== null && delta.project !== project) continue;
      touched = true;
      const second = endOf(delta.second > plan.cutoffSecond ? delta.second : minuteOf(delta.second));
      let sum = sums.get(second);
      if (!sum) sums.set(second, (sum = { project, second, counts: emptyCounts(), latencies: new Map() }));
      addDelta(sum, delta);
    }
    if (touched) seen.push(batch.received_at);
  }
  return { deltas: [...sums.values()].sort((a, b) => a.second - b.second), seen: seen.sort((a, b) => a - b) };
}
