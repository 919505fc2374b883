import type { Kysely } from 'kysely';
import type { AccountAttempt } from '../../../domain/ports/deliveries-repository.js';
import type { Database } from '../../schema.js';

/**
 * The attempts of an account's deliveries recorded after `afterSeq`, oldest first, at most
 * `limit`: what a live stream sends. Reads the attempts' primary key range from `afterSeq`,
 * joined to their deliveries for the account.
 */
export async function attemptsAfter(db: Kysely<Database>, accountId: string, afterSeq: number, limit: number): Promise<AccountAttempt[]> {
  const rows = await db
    .selectFrom('webhook_attempts as a')
    .innerJoin('webhook_deliveries as d', 'd.id', 'a.delivery_id')
    .select([
      'a.seq',
      'a.delivery_id',
      'a.attempt',
      'a.started_at',
      'a.duration_ms',
      'a.status_code',
      'a.error_class',
      'a.error',
      'a.response_body',
      'd.endpoint_id',
      'd.event_id',
      'd.event_type',
    ])
    .where('d.account_id', '=', accountId)
    .where('a.seq', '>', afterSeq)
    .orderBy('a.seq')
    .limit(limit)
    .execute();
  return rows.map((r) => ({
    seq: Number(r.seq),
    delivery_id: r.delivery_id,
    endpoint_id: r.endpoint_id,
    event_id: r.event_id,
    event_type: r.event_type,
    attempt: Number(r.attempt),
    started_at: r.started_at,
    duration_ms: Number(r.duration_ms),
    status_code: r.status_code === null ? null : Number(r.status_code),
    error_class: r.error_class,
    error: r.error,
    response_body: r.response_body,
  }));
}

/** The highest attempt seq in the database (0 when none): a new stream starts after it. */
export async function lastAttemptSeq(db: Kysely<Database>): Promise<number> {
  const row = await db
    .selectFrom('webhook_attempts')
    .select((eb) => eb.fn.max<number | string | null>('seq').as('seq'))
    .executeTakeFirstOrThrow();
  return Number(row.seq ?? 0);
}
