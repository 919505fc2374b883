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
export async function recordAttempts(trx: Transaction<Database>, batch: readonly AttemptToRecord[]): Promise<Map<string, number | null>> {
  // Multi-row statements: two per batch for the common case instead of two per attempt.
  for (let i = 0; i < batch.length; i += ATTEMPT_ROWS) {
    await trx
      .insertInto('webhook_attempts')
      .values(batch.slice(i, i + ATTEMPT_ROWS).map((item) => item.attempt))
      .execute();
  }
  // Before the deliveries' states change: the claims are checked on them as they stand.
  const failingSince = await recordEndpointHealth(trx, batch);
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
  return failingSince;
}

const startOf = (item: AttemptToRecord) => Date.parse(item.attempt.started_at);

/** The claim an attempt was made under still stands: its delivery is in flight under it. */
const claimStands = (item: AttemptToRecord) =>
  sql<boolean>`exists (select 1 from webhook_deliveries d where d.id = ${item.delivery.id} and d.status = 'in_flight' and d.locked_by = ${item.delivery.locked_by} and d.attempts = ${item.delivery.attempts})`;

/**
 * Each endpoint's `failing_since` after the batch's attempts (epoch ms of its first failed
 * attempt since its last success; null while it succeeds), written under the claim of the
 * attempt that decides it, so a stalled instance whose claim was reaped cannot undo what
 * happened since. Returns the value committed for the endpoints that had a failure here.
 *
 * - A success (the last one, by start): cleared, or the first failure that started after it.
 * - Failures only: the first one, unless the endpoint was already failing.
 */
async function recordEndpointHealth(trx: Transaction<Database>, batch: readonly AttemptToRecord[]): Promise<Map<string, number | null>> {
  const byEndpoint = new Map<string, AttemptToRecord[]>();
  for (const item of batch) {
    const list = byEndpoint.get(item.delivery.endpoint_id);
    if (list) list.push(item);
    else byEndpoint.set(item.delivery.endpoint_id, [item]);
  }
  const failing: string[] = [];
  // In one order everywhere: two instances recording attempts of the same endpoints at once
  // take their row locks in the same order, and never wait for each other in a cycle.
  for (const [endpointId, items] of [...byEndpoint].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const successes = items.filter((item) => item.outcome.kind === 'delivered');
    const failures = items.filter((item) => item.outcome.kind !== 'delivered');
    if (failures.length > 0) failing.push(endpointId);
    const earliest = (list: AttemptToRecord[]) => list.reduce((a, b) => (startOf(b) < startOf(a) ? b : a));
    if (successes.length > 0) {
      const last = successes.reduce((a, b) => (startOf(b) >= startOf(a) ? b : a));
      const after = failures.filter((item) => startOf(item) > startOf(last));
      const since = after.length > 0 ? startOf(earliest(after)) : null;
      let update = trx.updateTable('webhook_endpoints').set({ failing_since: since }).where('id', '=', endpointId).where(claimStands(last));
      // The common case (all delivered, nothing failing) writes nothing.
      if (since === null) update = update.where('failing_since', 'is not', null);
      await update.execute();
    } else {
      const first = earliest(failures);
      await trx
        .updateTable('webhook_endpoints')
        .set({ failing_since: startOf(first) })
        .where('id', '=', endpointId)
        .where('failing_since', 'is', null)
        .where(claimStands(first))
        .execute();
    }
  }
  if (failing.length === 0) return new Map();
  const rows = await trx.selectFrom('webhook_endpoints').select(['id', 'failing_since']).where('id', 'in', failing).execute();
  return new Map(rows.map((row) => [row.id, row.failing_since === null ? null : Number(row.failing_since)]));
}
