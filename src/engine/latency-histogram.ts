/**
 * A latency distribution with 1% relative accuracy: the logarithmic bucket mapping of
 * DDSketch (Masson et al., VLDB 2019) over a fixed range, kept as exact integer counts.
 * Exact counts make it mergeable and also subtractable, which is what lets a sliding
 * window drop the second that leaves it instead of being rebuilt.
 */
import { MAX_LATENCY_MS } from '../domain/telemetry.js';

export const RELATIVE_ACCURACY = 0.01;
const GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY);
const LN_GAMMA = Math.log(GAMMA);
/** Bins for values 1..MAX_LATENCY_MS; 0 ms is counted apart (log 0 is undefined). */
export const BIN_COUNT = Math.ceil(Math.log(MAX_LATENCY_MS) / LN_GAMMA) + 1;

/** The bin of a latency of at least 1 ms. */
export function binOf(latencyMs: number): number {
  return Math.ceil(Math.log(latencyMs) / LN_GAMMA - 1e-9);
}

/** The value a bin stands for: within RELATIVE_ACCURACY of every value mapped to it. */
export function binValue(bin: number): number {
  return bin === 0 ? 1 : (2 * Math.pow(GAMMA, bin)) / (GAMMA + 1);
}

/**
 * Sparse per-second latencies: bin -> count, with bin -1 for zero latencies. Stored and
 * replayed as a flat [bin, count, bin, count, ...] array.
 */
export type SparseBins = Map<number, number>;
export const ZERO_BIN = -1;

export function addLatency(bins: SparseBins, latencyMs: number): void {
  const bin = latencyMs < 1 ? ZERO_BIN : binOf(latencyMs);
  bins.set(bin, (bins.get(bin) ?? 0) + 1);
}

/** Dense histogram of a window: counts per bin plus the zero count. */
export class LatencyHistogram {
  // Allocated on first use: most windows of most scopes never see a turn.
  private counts: Uint32Array | undefined;
  private zeros = 0;
  private total = 0;

  get count(): number {
    return this.total;
  }

  /** Adds (sign 1) or removes (sign -1) a second's latencies. */
  apply(bins: SparseBins, sign: 1 | -1): void {
    const counts = (this.counts ??= new Uint32Array(BIN_COUNT));
    for (const [bin, n] of bins) {
      if (bin === ZERO_BIN) this.zeros += sign * n;
      else counts[bin]! += sign * n;
      this.total += sign * n;
    }
  }

  /**
   * The value at rank floor(q * (n - 1)) of the sorted latencies (the lower nearest rank),
   * within 1% of the exact one; undefined when empty.
   */
  quantile(q: number): number | undefined {
    if (this.total <= 0) return undefined;
    const rank = Math.floor(q * (this.total - 1));
    let seen = this.zeros;
    if (rank < seen || !this.counts) return 0;
    for (let bin = 0; bin < BIN_COUNT; bin++) {
      seen += this.counts[bin]!;
      if (rank < seen) return binValue(bin);
    }
    return binValue(BIN_COUNT - 1);
  }
}
