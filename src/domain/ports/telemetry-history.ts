/**
 * Stored telemetry of one scope over a time range, read for series and previews (src/domain/
 * rule-series-service.ts). The answer comes from the database alone, so any instance can give
 * it, whoever owns the account's shard.
 */

/** One row of telemetry_seconds or telemetry_minutes (`second`: a minute row's LAST second). */
export interface TelemetryRollupRow {
  second: number;
  call: number;
  call_crash: number;
  turn: number;
  api_error: number;
  function_error: number;
  /** [bin, count, ...] JSON, bins ascending. */
  latencies: string;
}

/** A stored batch that is not yet folded into the roll-up tables. */
export interface UnrolledBatch {
  received_at: number;
  /** As stored in telemetry_batches (encodeDeltas). */
  deltas: string;
}

export interface TelemetryHistoryQuery {
  accountId: string;
  /** null: the account as a whole (all its events); else only this project's. */
  project: string | null;
  /** Placements in (afterSecond, throughSecond] are wanted. */
  afterSecond: number;
  throughSecond: number;
  /**
   * A multiple of 60: seconds at or before it are read per minute (telemetry_minutes, a row
   * placed at its last second), later ones per second (telemetry_seconds).
   */
  cutoffSecond: number;
  /** Batches received after this are read (for their receipt times), and rows up to afterSecond when `lastSeen`. */
  seenAfterSecond: number;
  /** false: rows come with empty histograms ('[]'): count metrics do without them. */
  latencies: boolean;
  /** Whether lastSeenSecond is wanted: latency metrics do without it. */
  lastSeen: boolean;
}

export interface TelemetryHistory {
  /** Minute rows with afterSecond < second <= min(cutoffSecond, throughSecond), by second. */
  minutes: TelemetryRollupRow[];
  /** Second rows with max(afterSecond, cutoffSecond) < second <= throughSecond, by second. */
  seconds: TelemetryRollupRow[];
  /**
   * The account's batches not folded into those rows (shard_seq above the shard's roll-up
   * progress when the rows were read), received after seenAfterSecond, in shard order. Their
   * deltas of other projects are the reader's to skip.
   */
  batches: UnrolledBatch[];
  /** The latest row placement in (seenAfterSecond, afterSecond], if any (null when not asked for). */
  lastSeenSecond: number | null;
}

export interface TelemetryHistoryRepository {
  /**
   * One consistent view: the rows and the unrolled batches are read without a transaction,
   * and read again when a roll-up committed meanwhile (it moves rows and progress together),
   * so no batch is counted twice or missed.
   */
  read(query: TelemetryHistoryQuery): Promise<TelemetryHistory>;
}
