import { toIso, type Clock } from './clock.js';

/** The documented default: alert events, deliveries and attempts are kept 30 days. */
export const DEFAULT_EVENT_RETENTION = '30d';
/** Per-minute telemetry (series and previews beyond the last two hours): 7 days. */
export const DEFAULT_TELEMETRY_RETENTION = '7d';
/** Rule state history: 30 days, as Grafana keeps alert state history. */
export const DEFAULT_HISTORY_RETENTION = '30d';
export const MIN_RETENTION_MS = 3_600_000;
export const MAX_RETENTION_MS = 3650 * 86_400_000;

const UNIT_MS: Record<string, number> = { '': 1, ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses a retention such as `30d`, `72h` or `off` (keep everything). Units ms, s, m, h, d;
 * a bare number is milliseconds. Returns milliseconds, or null for `off`; throws with a
 * message naming the problem.
 */
export function parseRetention(text: string): number | null {
  const trimmed = text.trim();
  if (trimmed.toLowerCase() === 'off') return null;
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(trimmed);
  if (!match) throw new Error(`"${text}" is not a duration like 30d, 72h or off`);
  const ms = Math.round(Number(match[1]) * UNIT_MS[match[2] ?? '']!);
  if (ms < MIN_RETENTION_MS || ms > MAX_RETENTION_MS) throw new Error(`"${text}" must be between 1h and 3650d, or off`);
  return ms;
}

/** Deletions of one batch. */
export interface PrunedCounts {
  deliveries: number;
  attempts: number;
  events: number;
  /** Rule state history rows (ALERTS_HISTORY_RETENTION). */
  history: number;
  /** Silences ended longer ago than ALERTS_HISTORY_RETENTION (the history rows naming them go by then too). */
  silences: number;
}

/** What the pruner needs from storage; each call is one short transaction. */
export interface RetentionStore {
  /**
   * Deletes up to `limit` finished deliveries (delivered, failed or cancelled; never pending
   * or in flight) created and last changed before `beforeIso`, and their attempts.
   */
  pruneFinishedDeliveries(beforeIso: string, limit: number): Promise<{ deliveries: number; attempts: number }>;
  /** Deletes up to `limit` alert events created before `beforeIso` that no delivery refers to. */
  pruneUnreferencedEvents(beforeIso: string, limit: number): Promise<number>;
  /** Deletes up to `limit` rule history rows of transitions before `beforeIso`. */
  pruneHistory(beforeIso: string, limit: number): Promise<number>;
  /** Deletes up to `limit` silences that ended before `beforeIso`. */
  pruneSilences(beforeIso: string, limit: number): Promise<number>;
}

export interface RetentionPruner {
  /** Prunes now (without holding up the caller) and then every interval. */
  start(): void;
  /** Stops the timer and waits for a prune in progress, which stops after its current batch. */
  stop(): Promise<void>;
  /** Prunes everything older than the retention at the clock's current time; resolves with the totals. */
  pruneNow(): Promise<PrunedCounts>;
}

export interface RetentionPrunerDeps {
  store: RetentionStore;
  clock: Clock;
  /** null keeps everything (`ALERTS_EVENT_RETENTION=off`). */
  retentionMs: number | null;
  /** Rule state history; null or absent keeps it all (`ALERTS_HISTORY_RETENTION=off`). */
  historyRetentionMs?: number | null;
  /** Time between prunes; default one hour. */
  intervalMs?: number;
  /** Rows per transaction; small, so a prune never holds the write lock for long. */
  batchSize?: number;
  onPruned?: (counts: PrunedCounts) => void;
  onError?: (error: unknown) => void;
}

const HOUR = 3_600_000;
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Deletes alert events, webhook deliveries and their attempts, rule history and ended silences, once they
 * are older than their retention, in small batches with a turn of the event loop between
 * them, so requests and the delivery worker keep going while a large backlog is pruned.
 */
export function createRetentionPruner(deps: RetentionPrunerDeps): RetentionPruner {
  const { store, clock, retentionMs } = deps;
  const historyRetentionMs = deps.historyRetentionMs ?? null;
  const intervalMs = deps.intervalMs ?? HOUR;
  const batchSize = deps.batchSize ?? 500;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<PrunedCounts> | undefined;
  let stopping = false;

  async function prune(): Promise<PrunedCounts> {
    const totals: PrunedCounts = { deliveries: 0, attempts: 0, events: 0, history: 0, silences: 0 };
    // Read once: both cut-offs are of the same moment.
    const now = clock.now();
    if (retentionMs !== null) await pruneEvents(toIso(now - retentionMs), totals);
    if (historyRetentionMs !== null) await pruneHistory(toIso(now - historyRetentionMs), totals);
    return totals;
  }

  async function pruneEvents(before: string, totals: PrunedCounts): Promise<void> {
    // Deliveries first: an event goes only once no delivery refers to it.
    for (;;) {
      if (stopping) return;
      const { deliveries, attempts } = await store.pruneFinishedDeliveries(before, batchSize);
      totals.deliveries += deliveries;
      totals.attempts += attempts;
      if (deliveries < batchSize) break;
      await yieldToEventLoop();
    }
    for (;;) {
      if (stopping) return;
      const events = await store.pruneUnreferencedEvents(before, batchSize);
      totals.events += events;
      if (events < batchSize) break;
      await yieldToEventLoop();
    }
  }

  async function pruneHistory(before: string, totals: PrunedCounts): Promise<void> {
    for (;;) {
      if (stopping) return;
      const history = await store.pruneHistory(before, batchSize);
      totals.history += history;
      if (history < batchSize) break;
      await yieldToEventLoop();
    }
    // Ended silences are kept as long as the history that may name them.
    for (;;) {
      if (stopping) return;
      const silences = await store.pruneSilences(before, batchSize);
      totals.silences += silences;
      if (silences < batchSize) break;
      await yieldToEventLoop();
    }
  }

  function pruneNow(): Promise<PrunedCounts> {
    // One prune at a time; a request during one runs after it, at its own time.
    const previous = running ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(prune);
    running = next;
    void next.then(
      () => {
        if (running === next) running = undefined;
      },
      () => {
        if (running === next) running = undefined;
      },
    );
    return next;
  }

  function runScheduled(): void {
    pruneNow().then(
      (counts) => {
        if (counts.deliveries + counts.attempts + counts.events + counts.history + counts.silences > 0) deps.onPruned?.(counts);
      },
      (error: unknown) => deps.onError?.(error),
    );
  }

  return {
    start() {
      if ((retentionMs === null && historyRetentionMs === null) || timer !== undefined) return;
      stopping = false;
      runScheduled();
      timer = setInterval(runScheduled, intervalMs);
      timer.unref();
    },
    async stop() {
      stopping = true;
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      await running?.catch(() => undefined);
    },
    pruneNow,
  };
}
