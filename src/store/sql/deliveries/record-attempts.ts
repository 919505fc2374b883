import { sql, type Transaction } from 'kysely';
import type { AttemptOutcome, AttemptRecord, ClaimedDelivery } from '../../../domain/ports/deliveries-repository.js';
import type { Database } from '../../schema.js';

export interface AttemptToRecord {
  delivery: ClaimedDelivery;
  attempt: AttemptRecord;
  outcome: AttemptOutcome;
  nowIso: string;
}

/** Rows per multi-row statement: well below every database's parameter limit. */
const ATTEMPT_ROWS = 100;
const DELIVERED_ROWS = 500;

/**
 * The claim a delivery was attempted under, as a row value `(id, locked_by, attempts)` to
 * compare with `in (values ...)`: the new state is written only while that claim stands.
 * Casts, because PostgreSQL types bare parameters in VALUES as text.
 */
const claimOf = ({ delivery }: AttemptToRecord) => sql`(cast(${delivery.id} as text), cast(${delivery.locked_by} as text), cast(${delivery.attempts} as integer))`;

/**
 * Writes a batch of attempts and the new states of their deliveries, within `trx` (the
 * repository's group commit: many attempts, one transaction, one disk sync).
 *
 * Every attempt row is inserted: the receiver saw the attempt, so it belongs in the history
 * even when its claim was reaped meanwhile (its number is the one its claim counted, so it
 * never repeats another's). A delivery's state is changed only under the claim the attempt
 * was made with: still in flight, still `locked_by` that owner, still at that attempt. So an
 * instance that stalled past its lease, or was taken for dead, cannot overwrite what the
 * instance that reaped or claimed the delivery again has written since; and a delivery
 * cancelled meanwhile (endpoint deleted) stays cancelled.
 */
export async function recordAttempts(trx: Transaction<Database>, batch: readonly AttemptToRecord[]): Promise<void> {
  // Multi-row statements: two per batch for the common case instead of two per attempt.
  for (let i = 0; i < batch.length; i += ATTEMPT_ROWS) {
    await trx
      .insertInto('webhook_attempts')
      .values(batch.slice(i, i + ATTEMPT_ROWS).map((item) => item.attempt))
      .execute();
  }
  const delivered = batch.filter((item) => item.outcome.kind === 'delivered');
  for (let i = 0; i < delivered.length; i += DELIVERED_ROWS) {
    const chunk = delivered.slice(i, i + DELIVERED_ROWS);
    await trx
      .updateTable('webhook_deliveries')
      .set({ status: 'delivered', next_attempt_at: null, locked_until: null, locked_by: null, last_error: null, updated_at: chunk[chunk.length - 1]!.nowIso })
      // The id list walks the primary key; the row values hold each to its own claim.
      .where(
        'id',
        'in',
        chunk.map((item) => item.delivery.id),
      )
      .where('status', '=', 'in_flight')
      .where(sql<boolean>`(id, locked_by, attempts) in (values ${sql.join(chunk.map(claimOf))})`)
      .execute();
  }
  for (const { delivery, outcome, nowIso } of batch) {
    if (outcome.kind === 'delivered') continue;
    await trx
      .updateTable('webhook_deliveries')
      .set({
        status: outcome.kind === 'retry' ? 'pending' : outcome.kind,
        next_attempt_at: outcome.kind === 'retry' ? outcome.nextAttemptAt : null,
        locked_until: null,
        locked_by: null,
        last_error: outcome.error,
        updated_at: nowIso,
      })
      .where('id', '=', delivery.id)
      .where('status', '=', 'in_flight')
      .where('locked_by', '=', delivery.locked_by)
      .where('attempts', '=', delivery.attempts)
      .execute();
  }
}
