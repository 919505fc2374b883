import type { Kysely } from 'kysely';
import type { Database } from './schema.js';

/** An `alerts.triggered` / `alerts.resolved` event as written to the outbox. */
export interface AlertEvent {
  id: string;
  account_id: string;
  rule_id: string;
  event_type: 'alerts.triggered' | 'alerts.resolved';
  payload: string;
  created_at: string;
}

export interface AlertEventsRepository {
  /** Events in the order they were written, optionally of one account. */
  list(accountId?: string): Promise<AlertEvent[]>;
}

export function createAlertEventsRepository(db: Kysely<Database>): AlertEventsRepository {
  return {
    async list(accountId) {
      let query = db.selectFrom('alert_events').select(['id', 'account_id', 'rule_id', 'event_type', 'payload', 'created_at']);
      if (accountId !== undefined) query = query.where('account_id', '=', accountId);
      const rows = await query.orderBy('seq').execute();
      return rows.map((row) => ({ ...row, event_type: row.event_type as AlertEvent['event_type'] }));
    },
  };
}
