import { COUNTERS, type Counter } from './telemetry.js';

/**
 * Telemetry kept beyond the evaluator's hour: per second (telemetry_seconds) and per minute
 * (telemetry_minutes), for the account as a whole (project '' : every event of the account,
 * with a project or without) and for each project (only that project's events).
 */

/** One row of telemetry_seconds or telemetry_minutes, or what a fold adds to one. */
export interface RollupRow {
  accountId: string;
  /** '' for the account as a whole. */
  project: string;
  /** The second; for a minute row the LAST second it covers (see minuteOf). */
  second: number;
  counts: Record<Counter, number>;
  /** Latency histogram as [bin, count, ...], bins strictly ascending, counts > 0. */
  latencies: readonly number[];
}

/** What one fold adds to each table. */
export interface RollupRows {
  seconds: readonly RollupRow[];
  minutes: readonly RollupRow[];
}

/**
 * The minute row an event second goes to: a minute row ending at M (a multiple of 60) holds
 * the seconds (M - 60, M]. So 10:00:00 (and 10:00:00.999, the same second) is in the row
 * ending 10:00:00, and 10:00:01 in the row ending 10:01:00.
 */
export const minuteOf = (second: number): number => Math.ceil(second / 60) * 60;

/** The key of a row in its table: a scope and a second. */
export const rollupKey = (accountId: string, project: string, second: number): string => `${accountId}\u0000${project}\u0000${second}`;

/**
 * Merges two histograms in [bin, count, ...] form (each sorted by bin) into a new one, sorted,
 * counts of a bin in both added. Histograms are exact integer counts, so merging is exact and
 * in any order: a minute row is the same whichever way its seconds were folded.
 */
export function mergeLatencyPairs(a: readonly number[], b: readonly number[]): number[] {
  if (a.length === 0) return [...b];
  if (b.length === 0) return [...a];
  const merged: number[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const binA = a[i]!;
    const binB = b[j]!;
    if (binA < binB) {
      merged.push(binA, a[i + 1]!);
      i += 2;
    } else if (binB < binA) {
      merged.push(binB, b[j + 1]!);
      j += 2;
    } else {
      merged.push(binA, a[i + 1]! + b[j + 1]!);
      i += 2;
      j += 2;
    }
  }
  for (; i < a.length; i += 2) merged.push(a[i]!, a[i + 1]!);
  for (; j < b.length; j += 2) merged.push(b[j]!, b[j + 1]!);
  return merged;
}

/** `row` with `more` added: counters summed, histograms merged. Same scope and second. */
export function mergeRollupRows(row: RollupRow, more: RollupRow): RollupRow {
  const counts = { ...row.counts };
  for (const c of COUNTERS) counts[c] += more.counts[c];
  return { accountId: row.accountId, project: row.project, second: row.second, counts, latencies: mergeLatencyPairs(row.latencies, more.latencies) };
}
