import type { RollupRows } from '../telemetry-rollups.js';
import type { StoredBatch } from './telemetry-repository.js';

/** How far a shard's telemetry is committed and rolled up. */
export interface RollupProgress {
  shard: number;
  /** The highest shard_seq folded into telemetry_seconds and telemetry_minutes. */
  rolledSeq: number;
  /** The highest shard_seq committed (shard_sequences.last_seq). */
  lastSeq: number;
}

/** Which table a prune deletes from. */
export type RollupTable = 'seconds' | 'minutes';

/**
 * The roll-up of stored telemetry batches into per-second and per-minute rows (see
 * telemetry-rollups.ts), exactly once per batch: a shard's batches are folded in shard_seq
 * order, and each fold moves the shard's rolled_seq in the same transaction as its rows.
 */
export interface TelemetryRollupRepository {
  /** Every shard's progress, in shard order. */
  progress(): Promise<RollupProgress[]>;
  /** The shard's batches with shard_seq > afterSeq, in order, at most `limit`. */
  unrolled(shard: number, afterSeq: number, limit: number): Promise<StoredBatch[]>;
  /**
   * In one transaction holding the shard's progress row: if the shard's rolled_seq is still
   * `fromSeq`, adds `rows` to the stored rows (counters summed, histograms merged; missing
   * rows created), sets rolled_seq to `throughSeq` and returns true. Otherwise (another roller
   * folded these batches first) writes nothing and returns false.
   */
  fold(shard: number, fromSeq: number, throughSeq: number, rows: RollupRows): Promise<boolean>;
  /**
   * Deletes up to about `limit` rows of the table whose `second` is before `beforeSecond`,
   * oldest first, in one short transaction; returns how many (0: none left).
   */
  prune(table: RollupTable, beforeSecond: number, limit: number): Promise<number>;
}
