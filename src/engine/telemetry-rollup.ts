import type { Logger } from 'pino';
import type { Clock } from '../domain/clock.js';
import type { StoredBatch } from '../domain/ports/telemetry-repository.js';
import type { RollupTable, TelemetryRollupRepository } from '../domain/ports/telemetry-rollup-repository.js';
import { ALL_SHARDS } from '../domain/shards.js';
import { emptyCounts, PER_SECOND_RETENTION_MS } from '../domain/telemetry.js';
import { minuteOf, rollupKey, type RollupRow, type RollupRows } from '../domain/telemetry-rollups.js';
import { addDelta, decodeDeltas, type SecondDelta } from './aggregates.js';

/**
 * Rolls stored telemetry batches up into per-second and per-minute rows, and prunes those
 * rows past their retention. Batches of a shard are folded in shard_seq order, a page at a
 * time, each page in one transaction that also moves the shard's rolled_seq: a batch counts
 * exactly once whether this process is killed mid-way or two instances roll one shard
 * (the loser's fold writes nothing). Readers add the batches after rolled_seq, so the lag
 * is never visible as missing telemetry; it only keeps batches stored longer (a batch is
 * pruned only once rolled up, telemetry-repository.ts).
 */
export interface TelemetryRollups {
  /** Rolls now, then every interval; prunes about once a minute. */
  start(): void;
  /** Stops the timer and waits for a pass in progress. */
  stop(): Promise<void>;
  /**
   * Rolls every unrolled batch of the shards this instance rolls; resolves with how many
   * batches were folded. With `budgetMs` (the engine, before it prunes batches): returns at
   * once if a roll is already running, and stops folding once the budget is spent, so a
   * backlog never holds up evaluation.
   */
  rollNow(options?: { budgetMs?: number }): Promise<number>;
  /** Deletes per-second and per-minute rows past their retention at the clock's time; resolves with the counts. */
  pruneNow(): Promise<Record<RollupTable, number>>;
}

export interface TelemetryRollupsDeps {
  rollups: TelemetryRollupRepository;
  clock: Clock;
  logger: Logger;
  /** How long minute rows are kept (ALERTS_TELEMETRY_RETENTION); null: for ever. */
  telemetryRetentionMs: number | null;
  /** The shards this instance rolls (those it holds); absent: every shard. */
  shards?: () => readonly number[];
  /** Time between passes; default 2 s. */
  intervalMs?: number;
  /** Batches per fold; default 100 (a batch holds up to 10,000 deltas). */
  pageSize?: number;
}

const PRUNE_EVERY_MS = 60_000;
/**
 * Characters of encoded deltas per fold: a batch holds up to 10,000 deltas, each up to two
 * rows per table, so a page of large batches is folded a few at a time (memory, and a short
 * transaction), while a page of small ones is one fold.
 */
const FOLD_BUDGET_CHARS = 2_000_000;
/** Rows one fold writes at most, unless a single batch makes more (up to 4 per event). */
const MAX_ROWS_PER_FOLD = 10_000;
/** Rows per delete: a short statement, so writers never wait long. */
const PRUNE_BATCH = 2_000;
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export function createTelemetryRollups(deps: TelemetryRollupsDeps): TelemetryRollups {
  const { rollups, clock, logger } = deps;
  const intervalMs = deps.intervalMs ?? 2_000;
  const pageSize = deps.pageSize ?? 100;
  let timer: NodeJS.Timeout | undefined;
  let stopping = false;
  let lastPruneAt = -Infinity;
  /** The pass in progress: one at a time, in this process. */
  let chain: Promise<unknown> = Promise.resolve();

  const serialized = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = chain.catch(() => undefined).then(fn);
    chain = next;
    return next;
  };

  /** Rolls in progress or queued in this process. */
  let rolling = 0;
  async function roll(deadline = Infinity): Promise<number> {
    const shards = new Set(deps.shards?.() ?? ALL_SHARDS);
    let folded = 0;
    for (const { shard, rolledSeq, lastSeq } of await rollups.progress()) {
      if (!shards.has(shard)) continue;
      let from = rolledSeq;
      pages: while (from < lastSeq && !stopping && performance.now() < deadline) {
        const page = await rollups.unrolled(shard, from, pageSize);
        // Batches numbered but not visible (pruned by an older version): nothing to fold.
        if (page.length === 0) break;
        for (const run of runsOf(page)) {
          const through = await foldRun(shard, from, run);
          if (through === undefined) {
            // Another instance folded them first: its progress is the truth; next pass.
            logger.debug({ shard, from }, 'telemetry roll-up of the shard was done by another instance');
            break pages;
          }
          // Sequence numbers are dense: the batches folded are those after `from`.
          folded += through - from;
          from = through;
          if (stopping || performance.now() >= deadline) break pages;
        }
      }
    }
    return folded;
  }

  /**
   * Folds a run of batches, in halves while it makes more than MAX_ROWS_PER_FOLD rows: a
   * fold is one transaction, and a shutdown waits for the one in progress (many distinct
   * projects in one second make many rows from few characters). Resolves with the last
   * shard_seq folded, or undefined when another roller had folded them.
   */
  async function foldRun(shard: number, from: number, run: readonly StoredBatch[]): Promise<number | undefined> {
    const rows = rowsOf(run);
    if (run.length > 1 && rows.seconds.length + rows.minutes.length > MAX_ROWS_PER_FOLD) {
      const half = Math.ceil(run.length / 2);
      const through = await foldRun(shard, from, run.slice(0, half));
      return through === undefined || stopping ? through : foldRun(shard, through, run.slice(half));
    }
    const through = run.at(-1)!.shard_seq;
    return (await rollups.fold(shard, from, through, rows)) ? through : undefined;
  }

  async function prune(): Promise<Record<RollupTable, number>> {
    const now = clock.now();
    const counts: Record<RollupTable, number> = { seconds: 0, minutes: 0 };
    const cutoffs: [RollupTable, number | null][] = [
      ['seconds', PER_SECOND_RETENTION_MS],
      ['minutes', deps.telemetryRetentionMs],
    ];
    for (const [table, retentionMs] of cutoffs) {
      if (retentionMs === null) continue;
      // A row is kept while its (last) second is within the retention.
      const before = Math.ceil((now - retentionMs) / 1000);
      for (;;) {
        if (stopping) return counts;
        const deleted = await rollups.prune(table, before, PRUNE_BATCH);
        counts[table] += deleted;
        if (deleted < PRUNE_BATCH) break;
        await yieldToEventLoop();
      }
    }
    return counts;
  }

  /** A timer pass still running (a long catch-up) makes the next ones no-ops, rather than a queue. */
  let passing = false;
  async function scheduled(): Promise<void> {
    if (passing) return;
    passing = true;
    try {
      rolling++;
      await serialized(() => roll()).finally(() => rolling--);
      if (Date.now() - lastPruneAt >= PRUNE_EVERY_MS) {
        lastPruneAt = Date.now();
        const counts = await serialized(prune);
        if (counts.seconds + counts.minutes > 0) logger.debug(counts, 'pruned telemetry roll-ups past their retention');
      }
    } catch (error) {
      logger.error({ err: error }, 'telemetry roll-up failed; retrying at the next pass');
    } finally {
      passing = false;
    }
  }

  return {
    start() {
      if (timer !== undefined) return;
      stopping = false;
      void scheduled();
      if (intervalMs > 0) {
        timer = setInterval(() => void scheduled(), intervalMs);
        timer.unref();
      }
    },
    async stop() {
      stopping = true;
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      await chain.catch(() => undefined);
    },
    rollNow(options) {
      const budgetMs = options?.budgetMs;
      if (budgetMs !== undefined && rolling > 0) return Promise.resolve(0);
      rolling++;
      const started = performance.now();
      return serialized(() => roll(budgetMs === undefined ? Infinity : started + budgetMs)).finally(() => rolling--);
    },
    pruneNow: () => serialized(prune),
  };
}

/** The page cut into runs of at most FOLD_BUDGET_CHARS of deltas (at least one batch each), in order. */
function runsOf(page: readonly StoredBatch[]): StoredBatch[][] {
  const runs: StoredBatch[][] = [];
  let run: StoredBatch[] = [];
  let chars = 0;
  for (const batch of page) {
    if (run.length > 0 && chars + batch.deltas.length > FOLD_BUDGET_CHARS) {
      runs.push(run);
      run = [];
      chars = 0;
    }
    run.push(batch);
    chars += batch.deltas.length;
  }
  if (run.length > 0) runs.push(run);
  return runs;
}

/** A row being summed: its latencies as bins until they are written as pairs. */
type Sum = Omit<RollupRow, 'latencies'> & Pick<SecondDelta, 'counts' | 'latencies'>;

/** The per-second and per-minute rows a run of batches adds, for the account scope '' and each project. */
export function rowsOf(batches: readonly StoredBatch[]): RollupRows {
  const seconds = new Map<string, Sum>();
  const minutes = new Map<string, Sum>();
  const add = (into: Map<string, Sum>, accountId: string, project: string, second: number, delta: SecondDelta) => {
    const key = rollupKey(accountId, project, second);
    let sum = into.get(key);
    if (!sum) into.set(key, (sum = { accountId, project, second, counts: emptyCounts(), latencies: new Map() }));
    addDelta(sum, delta);
  };
  for (const batch of batches) {
    for (const delta of decodeDeltas(batch.deltas)) {
      // The account as a whole holds every event; a project only its own.
      for (const project of delta.project === null ? [''] : ['', delta.project]) {
        add(seconds, batch.account_id, project, delta.second, delta);
        add(minutes, batch.account_id, project, minuteOf(delta.second), delta);
      }
    }
  }
  const finish = (sums: Map<string, Sum>): RollupRow[] =>
    [...sums.values()].map(({ latencies, ...row }) => {
      const bins = [...latencies.keys()].sort((a, b) => a - b);
      const pairs = new Array<number>(2 * bins.length);
      bins.forEach((bin, i) => {
        pairs[2 * i] = bin;
        pairs[2 * i + 1] = latencies.get(bin)!;
      });
      return { ...row, latencies: pairs };
    });
  return { seconds: finish(seconds), minutes: finish(minutes) };
}
