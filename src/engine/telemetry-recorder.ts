import type { BatchRecord, IdempotencyRecord, TelemetryRepository } from '../domain/ports/telemetry-repository.js';

/** A batch recorded (with what `onCommitted` returned), or not, its idempotency key being taken. */
export type Recorded<T> = { recorded: T } | { replayOf: IdempotencyRecord };

/**
 * Durable recording of telemetry batches with group commit: batches that arrive in the same
 * turn of the event loop, or while a write is under way, are written together in the next
 * transaction, so concurrent senders share an fsync instead of queueing for one each.
 *
 * Writes run one at a time in this process, and `onCommitted` runs for each batch right
 * after its commit and before its promise resolves (with what `onCommitted` returned), with
 * the shard and number the batch got. Other processes commit batches too: applying them in
 * each shard's number order is the shard applier's job (shard-applier.ts). A batch whose
 * idempotency key was already taken is not stored, and `onCommitted` does not run for it.
 */
export function createTelemetryRecorder<B extends BatchRecord, T>(
  telemetry: TelemetryRepository,
  onCommitted: (batch: B, numbered: { shard: number; shardSeq: number }) => T,
): (batch: B) => Promise<Recorded<T>> {
  let queue: { batch: B; resolve: (result: Recorded<T>) => void; reject: (error: unknown) => void }[] = [];
  let writing = false;

  async function drain(): Promise<void> {
    writing = true;
    while (queue.length > 0) {
      const group = queue;
      queue = [];
      let outcomes: Awaited<ReturnType<TelemetryRepository['record']>>;
      try {
        outcomes = await telemetry.record(group.map((g) => g.batch));
      } catch (error) {
        for (const g of group) g.reject(error ?? new Error('recording telemetry failed'));
        continue;
      }
      group.forEach((g, i) => {
        try {
          const outcome = outcomes[i]!;
          g.resolve('shardSeq' in outcome ? { recorded: onCommitted(g.batch, outcome) } : outcome);
        } catch (error) {
          g.reject(error);
        }
      });
    }
    writing = false;
  }

  return (batch) =>
    new Promise<Recorded<T>>((resolve, reject) => {
      queue.push({ batch, resolve, reject });
      if (!writing && queue.length === 1) setImmediate(() => void drain());
    });
}
