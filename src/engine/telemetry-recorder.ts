import type { BatchRecord, IdempotencyRecord, TelemetryRepository } from '../domain/ports/telemetry-repository.js';

/** A batch recorded (with what `onCommitted` returned), or not, its idempotency key being taken. */
export type Recorded<T> = { recorded: T } | { replayOf: IdempotencyRecord };

/**
 * Durable recording of telemetry batches with group commit: batches that arrive in the same
 * turn of the event loop, or while a write is under way, are written together in the next
 * transaction, so concurrent senders share an fsync instead of queueing for one each.
 *
 * Writes run one at a time, so batches commit in sequence order, and `onCommitted` runs for
 * each batch in that order, right after its commit and before its promise resolves (with
 * what `onCommitted` returned). Whatever is applied in memory is applied in the order of
 * the stored sequence numbers, which is what lets a scope be built from storage while
 * batches keep arriving (see scope-registry.ts). A batch whose idempotency key was already
 * taken is not stored, and `onCommitted` does not run for it.
 */
export function createTelemetryRecorder<B extends BatchRecord, T>(
  telemetry: TelemetryRepository,
  onCommitted: (batch: B, seq: number) => T,
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
          g.resolve('seq' in outcome ? { recorded: onCommitted(g.batch, outcome.seq) } : outcome);
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
