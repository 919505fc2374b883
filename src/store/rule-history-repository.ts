import type { Kysely, Selectable } from 'kysely';
import type { AlertState, Operator, WindowDuration } from '../domain/alert-rules.js';
import type { RuleHistoryEntry, RuleHistoryRepository, RuleTransition } from '../domain/ports/rule-history-repository.js';
import type { AlertRuleHistoryTable, Database } from './schema.js';

/**
 * The `alert_rule_history` table (migration 0011). Rows are written and deleted inside the
 * rule's own transactions (see alert-rules-repository.ts), through the two helpers below;
 * reads page through the (account_id, rule_id, seq) index.
 */

function toEntry(row: Selectable<AlertRuleHistoryTable>): RuleHistoryEntry {
  return {
    // PostgreSQL returns bigint columns as strings.
    seq: Number(row.seq),
    from_state: row.from_state as AlertState,
    to_state: row.to_state as AlertState,
    value: row.value === null ? null : Number(row.value),
    at: row.at,
    event_id: row.event_id,
    event_type: row.event_type as RuleHistoryEntry['event_type'],
    threshold_value: Number(row.threshold_value),
    operator: row.operator as Operator,
    window_duration: row.window_duration as WindowDuration,
    silence_id: row.silence_id,
  };
}

/**
 * Adds one transition to a rule's history, in the caller's transaction, with the silence that
 * held its event back (null when none did, or it sent nothing).
 */
export async function insertTransition(
  trx: Kysely<Database>,
  accountId: string,
  ruleId: string,
  transition: RuleTransition,
  silenceId: string | null = null,
): Promise<void> {
  await trx
    .insertInto('alert_rule_history')
    .values({ account_id: accountId, rule_id: ruleId, ...transition, silence_id: silenceId })
    .execute();
}

/** Deletes a rule's whole history, in the caller's transaction (the rule is deleted with it). */
export async function deleteHistoryOf(trx: Kysely<Database>, accountId: string, ruleId: string): Promise<void> {
  await trx.deleteFrom('alert_rule_history').where('account_id', '=', accountId).where('rule_id', '=', ruleId).execute();
}

/** Deletes up to `limit` history rows older than `beforeIso`, oldest first; returns how many. */
export async function pruneHistoryBefore(db: Kysely<Database>, beforeIso: string, limit: number): Promise<number> {
  const result = await db
    .deleteFrom('alert_rule_history')
    .where('seq', 'in', (eb) => eb.selectFrom('alert_rule_history as h').select('h.seq').where('h.at', '<', beforeIso).orderBy('h.at').limit(limit))
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

export function createRuleHistoryRepository(db: Kysely<Database>): RuleHistoryRepository {
  return {
    async page(accountId, ruleId, limit, beforeSeq) {
      let query = db.selectFrom('alert_rule_history').selectAll().where('account_id', '=', accountId).where('rule_id', '=', ruleId);
      if (beforeSeq !== undefined) query = query.where('seq', '<', beforeSeq);
      const rows = await query.orderBy('seq', 'desc').limit(limit).execute();
      return rows.map(toEntry);
    },

    async after(accountId, afterSeq, limit) {
      const rows = await db
        .selectFrom('alert_rule_history')
        .selectAll()
        .where('account_id', '=', accountId)
        .where('seq', '>', afterSeq)
        .orderBy('seq')
        .limit(limit)
        .execute();
      return rows.map((row) => ({ rule_id: row.rule_id, ...toEntry(row) }));
    },

    async lastSeq() {
      const row = await db.selectFrom('alert_rule_history').select((eb) => eb.fn.max<number | string | null>('seq').as('seq')).executeTakeFirstOrThrow();
      return Number(row.seq ?? 0);
    },
  };
}
