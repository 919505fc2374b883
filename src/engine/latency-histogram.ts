/**
 * A latency distribution whose reported percentiles (whole milliseconds) are within 1% of the
 * exact ones. Latencies below EXACT_BELOW_MS are counted per millisecond; larger ones in the
 * logarithmic bins of DDSketch (Masson et al., VLDB 2019) over a fixed range, with 0.75%
 * relative accuracy. Both are kept as exact integer counts.
 *
 * Why not plain 1% bins: the API reports a whole number of milliseconds, and rounding a value
 * that is already up to 1% off can add up to 0.5 ms more (58 ms was reported as 59 ms, 455 ms
 * as 460 ms). With 0.75% bins from 256 ms up, rounding adds at most 0.5 / 256 < 0.2%, and
 * below 256 ms the count is exact, so the reported value stays within 1%.
 *
 * Exact counts make it mergeable and also subtractable, which is what lets a sliding window
 * drop the second that leaves it instead of being rebuilt.
 */
import { MAX_LATENCY_MS } from '../domain/telemetry.js';

/** What the reported (rounded) percentiles guarantee, relative to the exact ones. */
export const RELATIVE_ACCURACY = 0.01;
/** Latencies below this many ms have a bin each (bin = latency). */
export const EXACT_BELOW_MS = 256;
/** Relative accuracy of the logarithmic bins, leaving room for rounding to whole ms. */
const LOG_BIN_ACCURACY = 0.0075;
const GAMMA = (1 + LOG_BIN_ACCURACY) / (1 - LOG_BIN_ACCURACY);
const LN_GAMMA = Math.log(GAMMA);
/** DDSketch index: the i with GAMMA^(i-1) < latency <= GAMMA^i. */
const logIndex = (latencyMs: number) => Math.ceil(Math.log(latencyMs) / LN_GAMMA - 1e-9);
const FIRST_LOG_INDEX = logIndex(EXACT_BELOW_MS);
/** Exact bins 0..EXACT_BELOW_MS-1, then logarithmic bins up to MAX_LATENCY_MS. */
export const BIN_COUNT = EXACT_BELOW_MS + logIndex(MAX_LATENCY_MS) - FIRST_LOG_INDEX + 1;

/** The bin of a latency (ms, 0 to MAX_LATENCY_MS). */
export function binOf(latencyMs: number): number {
  if (latencyMs < EXACT_BELOW_MS) return Math.max(0, Math.floor(latencyMs));
  return EXACT_BELOW_MS + logIndex(latencyMs) - FIRST_LOG_INDEX;
}

/** The value a bin stands for: exact below EXACT_BELOW_MS, else within 0.75% of every value in it. */
export function binValue(bin: number): number {
  if (bin < EXACT_BELOW_MS) return bin;
  return (2 * Math.pow(GAMMA, bin - EXACT_BELOW_MS + FIRST_LOG_INDEX)) / (GAMMA + 1);
}

/**
 * Sparse per-second latencies: bin -> count. Stored and replayed as a flat
 * [bin, count, bin, count, ...] array.
 */
export type SparseBins = Map<number, number>;

export function addLatency(bins: SparseBins, latencyMs: number): void {
  const bin = binOf(latencyMs);
  bins.set(bin, (bins.get(bin) ?? 0) + 1);
}

/** Bins added on each side when the covered range grows, so growing is rare. */
const GROW_SLACK = 32;

/**
 * Dense histogram of a window: counts per bin. Only the range of bins in use is allocated,
 * grown on demand: a scope's latencies span a few hundred of the BIN_COUNT bins, and every
 * window of every scope holds one of these (memory with many accounts).
 */
export class LatencyHistogram {
  // Counts of bins lo .. lo + counts.length - 1. Allocated on first use: most windows of
  // most scopes never see a turn.
  private counts: Uint32Array | undefined;
  private lo = 0;
  private total = 0;

  get count(): number {
    return this.total;
  }

  /** Adds (sign 1) or removes (sign -1) a second's latencies. */
  apply(bins: SparseBins, sign: 1 | -1): void {
    for (const [bin, n] of bins) {
      this.cover(bin)[bin - this.lo]! += sign * n;
      this.total += sign * n;
    }
  }

  /** Adds or removes latencies given as [bin, count] pairs from `pairs[from]` on. */
  applyPairs(pairs: readonly number[], from: number, sign: 1 | -1): void {
    for (let i = from; i < pairs.length; i += 2) {
      const bin = pairs[i]!;
      const n = pairs[i + 1]!;
      this.cover(bin)[bin - this.lo]! += sign * n;
      this.total += sign * n;
    }
  }

  /** The counts, grown first if they do not cover `bin`. */
  private cover(bin: number): Uint32Array {
    const counts = this.counts;
    if (counts && bin >= this.lo && bin < this.lo + counts.length) return counts;
    const lo = Math.max(0, Math.min(bin, counts ? this.lo : bin) - GROW_SLACK);
    const hi = Math.min(BIN_COUNT, Math.max(bin + 1, counts ? this.lo + counts.length : 0) + GROW_SLACK);
    const grown = new Uint32Array(hi - lo);
    if (counts) grown.set(counts, this.lo - lo);
    this.counts = grown;
    this.lo = lo;
    return grown;
  }

  /**
   * The value at rank floor(q * (n - 1)) of the sorted latencies (the lower nearest rank);
   * rounded to whole ms it is within 1% of the exact one. Undefined when empty.
   */
  quantile(q: number): number | undefined {
    const counts = this.counts;
    if (this.total <= 0 || !counts) return undefined;
    const rank = Math.floor(q * (this.total - 1));
    let seen = 0;
    for (let i = 0; i < counts.length; i++) {
      seen += counts[i]!;
      if (rank < seen) return binValue(this.lo + i);
    }
    return binValue(this.lo + counts.length - 1);
  }
}
