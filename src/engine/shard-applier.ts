import type { Logger } from 'pino';
import type { StoredBatch, TelemetryRepository } from '../domain/ports/telemetry-repository.js';
import { decodeDeltas } from './aggregates.js';
import { REPLAY_MS, type CommittedBatch } from './scope-registry.js';

/** Stored batches read at a time. */
const PAGE = 200;

/**
 * Applies every committed telemetry batch of the shards this instance owns exactly once, in
 * each shard's sequence order, wherever the batch was received.
 *
 * Why a batch is never skipped: a shard's sequence numbers are dense and commit in order (the
 * storing transaction holds the shard's counter row until it commits), so once batch n is
 * applied, n+1 is the next to apply, and when n+1 is not visible yet nothing after it is. A
 * reader that kept only "the highest number seen" of a plain sequence would skip a batch that
 * got a lower number but committed later; here no such batch exists.
 *
 * Why never twice: each shard's work runs one step at a time (its turn), and a batch is
 * applied only when its number is exactly the next one. A batch committed by this process is
 * offered with its decoded deltas, so its turn needs no read.
 *
 * Each shard's work (loading it, rule changes, batches) runs in its turn, one at a time.
 */
export interface ShardApplier {
  /** The shard is ours: `load` runs in its turn (it returns the last number it applied). */
  take(shard: number, load: () => Promise<number>): Promise<void>;
  /** The shard is no longer ours: what waits in its turn is dropped, offers resolve undefined. */
  drop(shard: number): void;
  /** Whether the shard is held here (taken, not dropped). */
  holds(shard: number): boolean;
  /** Runs `fn` in the shard's turn; undefined when the shard is not held (or is dropped meanwhile). */
  inTurn<T>(shard: number, fn: () => Promise<T> | T): Promise<T | undefined>;
  /**
   * A batch committed by this process: applied in its turn, after every batch before it;
   * resolves with what `evaluate` returned for it (undefined when the shard is not held here:
   * its owner reads it from storage).
   */
  committed(batch: CommittedBatch): Promise<unknown>;
  /** Batches were committed to the shard elsewhere: read and apply what is new. */
  wake(shard: number): void;
  /** Looks for new batches of every held shard (the fallback when notifications may be lost). */
  wakeAll(): void;
  /** Settles once every shard's turn has run out of work. */
  idle(): Promise<void>;
}

export interface ShardApplierDeps {
  telemetry: TelemetryRepository;
  logger: Logger;
  now: () => number;
  /** Adds the batch to the aggregates; returns the scope keys it touched. */
  apply(batch: CommittedBatch): string[];
  /** Evaluates the rules of the touched scopes of `batch`; the promise settles when their writes did. */
  evaluate(touched: readonly string[], batch: CommittedBatch): Promise<unknown>;
  /** The last number applied for the shard (the scope registry keeps it). */
  appliedThrough(shard: number): number;
}

interface ShardTurn {
  dropped: boolean;
  chain: Promise<unknown>;
  /** Batches committed here, by number, waiting for their turn. */
  offered: Map<number, { batch: CommittedBatch; resolve(result: unknown): void }>;
  /** A catch-up is queued already (wakes coalesce). */
  readQueued: boolean;
  /** Storage may hold batches not seen yet (woken, polled, just taken): read it at the next catch-up. */
  storageDue: boolean;
}

export function createShardApplier(deps: ShardApplierDeps): ShardApplier {
  const turns = new Map<number, ShardTurn>();

  function queue<T>(turn: ShardTurn, fn: () => Promise<T> | T): Promise<T | undefined> {
    const result = turn.chain.then(() => (turn.dropped ? undefined : fn()));
    turn.chain = result.catch(() => undefined);
    return result;
  }

  const decoded = (shard: number, stored: StoredBatch): CommittedBatch => ({
    shard,
    seq: Number(stored.shard_seq),
    accountId: stored.account_id,
    receivedAt: Number(stored.received_at),
    deltas: decodeDeltas(stored.deltas),
  });

  /** Applies one batch that is exactly the next of its shard; settles its offer if there is one. */
  function applyNext(turn: ShardTurn, batch: CommittedBatch): void {
    const offer = turn.offered.get(batch.seq);
    turn.offered.delete(batch.seq);
    const applied = offer?.batch ?? batch;
    const evaluated = deps.evaluate(deps.apply(applied), applied);
    if (offer) offer.resolve(evaluated);
    else evaluated.catch(() => undefined);
  }

  /** Applies everything committed to the shard that is not applied yet, offered or stored. */
  async function catchUp(shard: number, turn: ShardTurn): Promise<void> {
    for (;;) {
      if (turn.dropped) return;
      // Offers at or below the watermark were applied by a load that read them from storage.
      for (const [seq, offer] of turn.offered) {
        if (seq <= deps.appliedThrough(shard)) {
          turn.offered.delete(seq);
          offer.resolve(undefined);
        }
      }
      const next = deps.appliedThrough(shard) + 1;
      const offer = turn.offered.get(next);
      if (offer) {
        applyNext(turn, offer.batch);
        continue;
      }
      // Batches of this process arrive offered: storage is read only when another process
      // committed (a wake-up, a poll) or an offer waits behind a number not offered here.
      const behind = [...turn.offered.keys()].some((seq) => seq > next);
      if (!turn.storageDue && !behind) return;
      turn.storageDue = false;
      const page = await deps.telemetry.shardBatchesSince(shard, deps.now() - REPLAY_MS, next - 1, PAGE);
      if (turn.dropped) return;
      for (const stored of page) {
        if (stored.shard_seq <= deps.appliedThrough(shard)) continue;
        applyNext(turn, decoded(shard, stored));
      }
      if (page.length === PAGE) turn.storageDue = true;
      else {
        // Offered batches are committed, so every number below theirs is committed too: one
        // that could not be read was older than the replay window (pruned). Nothing to apply.
        const waiting = [...turn.offered.keys()].filter((seq) => seq > deps.appliedThrough(shard));
        if (waiting.length === 0) return;
        if (page.length === 0) {
          const lowest = Math.min(...waiting);
          deps.logger.warn({ shard, from: deps.appliedThrough(shard) + 1, to: lowest - 1 }, 'telemetry batches older than the replay window were skipped');
          applyNext(turn, turn.offered.get(lowest)!.batch);
        }
      }
    }
  }

  function read(shard: number, turn: ShardTurn, fromStorage: boolean): Promise<unknown> {
    if (fromStorage) turn.storageDue = true;
    if (turn.readQueued) return turn.chain;
    turn.readQueued = true;
    return queue(turn, () => {
      turn.readQueued = false;
      return catchUp(shard, turn);
    }).catch((error: unknown) => deps.logger.error({ err: error, shard }, 'applying committed telemetry failed; retried at the next wake-up'));
  }

  const applier: ShardApplier = {
    async take(shard, load) {
      const previous = turns.get(shard);
      if (previous) previous.dropped = true;
      const turn: ShardTurn = { dropped: false, chain: previous?.chain ?? Promise.resolve(), offered: new Map(), readQueued: false, storageDue: false };
      turns.set(shard, turn);
      await queue(turn, load);
      await read(shard, turn, true);
    },

    drop(shard) {
      const turn = turns.get(shard);
      if (!turn) return;
      turn.dropped = true;
      turns.delete(shard);
      for (const offer of turn.offered.values()) offer.resolve(undefined);
      turn.offered.clear();
    },

    holds: (shard) => turns.has(shard),

    inTurn(shard, fn) {
      const turn = turns.get(shard);
      return turn ? queue(turn, fn) : Promise.resolve(undefined);
    },

    committed(batch) {
      const turn = turns.get(batch.shard);
      if (!turn) return Promise.resolve(undefined);
      const result = new Promise<unknown>((resolve) => turn.offered.set(batch.seq, { batch, resolve }));
      void read(batch.shard, turn, false);
      return result;
    },

    wake(shard) {
      const turn = turns.get(shard);
      if (turn) void read(shard, turn, true);
    },

    wakeAll() {
      for (const [shard, turn] of turns) void read(shard, turn, true);
    },

    async idle() {
      await Promise.all([...turns.values()].map((turn) => turn.chain));
    },
  };
  return applier;
}
