import type { Kysely } from 'kysely';
import type { AlertEvent, AlertEventsRepository } from '../domain/ports/alert-events-repository.js';
import type { Database } from './schema.js';

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
