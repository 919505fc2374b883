import type { Kysely, Selectable, Transaction } from 'kysely';
import { NO_HOLD, type AlertRule, type AlertState, type Metric, type Operator, type WindowDuration } from '../domain/alert-rules.js';
import type { AlertRulesRepository } from '../domain/ports/alert-rules-repository.js';
import { shardOf } from '../domain/shards.js';
import { CHANNELS, type Change } from '../domain/ports/notifications.js';
import { checkFence } from './cluster-repository.js';
import { insertDeliveriesForEvent } from './deliveries-repository.js';
import { deleteHistoryOf, insertTransition } from './rule-history-repository.js';
import { silenceHolding } from './silences-repository.js';
import type { StoreAdapter } from './dialect/index.js';
import type { AlertRulesTable, Database } from './schema.js';

type Row = Selectable<AlertRulesTable>;

export function toAlertRule(row: Row): AlertRule {
  return {
    id: row.id,
    account_id: row.account_id,
    name: row.name,
    project_id: row.project_id,
    metric: row.metric as Metric,
    operator: row.operator as Operator,
    threshold_value: Number(row.threshold_value),
    window_duration: row.window_duration as WindowDuration,
    enabled: row.enabled === 1,
    current_state: row.current_state as AlertState,
    since: row.since,
    last_evaluated_at: row.last_evaluated_at,
    current_value: row.current_value === null ? null : Number(row.current_value),
    pending_duration: row.pending_duration,
    keep_firing_duration: row.keep_firing_duration,
    pending_since: row.pending_since,
    keep_firing_since: row.keep_firing_since,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

/**
 * Takes the account row's write lock for the rest of the transaction, so that a count
 * followed by an insert cannot interleave with another request of the same account.
 */
export async function lockAccount(trx: Transaction<Database>, accountId: string): Promise<void> {
  await trx.updateTable('accounts').set((eb) => ({ name: eb.ref('name') })).where('id', '=', accountId).execute();
}

/**
 * `deliveryAttempts` is how many attempts each webhook delivery gets (the length of the
 * retry schedule); deliveries are created with the event that needs them.
 */
export function createAlertRulesRepository(
  db: Kysely<Database>,
  adapter: Pick<StoreAdapter, 'now' | 'rowLocks' | 'notifyWithin'>,
  deliveryAttempts: number,
): AlertRulesRepository {
  const byAccount = (accountId: string) => db.selectFrom('alert_rules').selectAll().where('account_id', '=', accountId);
  // Other instances cache rule lists: they forget the account's when this commits.
  const changed = (trx: Kysely<Database>, accountId?: string) =>
    adapter.notifyWithin(trx, CHANNELS.changes, JSON.stringify({ kind: 'rules', ...(accountId === undefined ? {} : { account_id: accountId }) } satisfies Change));

  return {
    insertWithinLimit(accountId, rule, limit) {
      return db.transaction().execute(async (trx) => {
        await lockAccount(trx, accountId);
        const { count } = await trx
          .selectFrom('alert_rules')
          .select((eb) => eb.fn.countAll<number>().as('count'))
          .where('account_id', '=', accountId)
          .executeTakeFirstOrThrow();
        if (Number(count) >= limit) return 'limit_exceeded' as const;
        const row = await trx
          .insertInto('alert_rules')
          .values({
            id: rule.id,
            account_id: accountId,
            shard: shardOf(accountId),
            name: rule.name,
            project_id: rule.project_id,
            metric: rule.metric,
            operator: rule.operator,
            threshold_value: rule.threshold_value,
            window_duration: rule.window_duration,
            enabled: rule.enabled ? 1 : 0,
            pending_duration: rule.pending_duration ?? NO_HOLD,
            keep_firing_duration: rule.keep_firing_duration ?? NO_HOLD,
            current_state: rule.current_state,
            since: rule.since,
            last_evaluated_at: null,
            current_value: null,
            created_at: rule.created_at,
            updated_at: rule.created_at,
          })
          .returningAll()
          .executeTakeFirstOrThrow();
        await changed(trx, accountId);
        return toAlertRule(row);
      });
    },

    async list(accountId, filter) {
      let query = byAccount(accountId);
      if (filter.enabled !== undefined) query = query.where('enabled', '=', filter.enabled ? 1 : 0);
      if (filter.metric !== undefined) query = query.where('metric', '=', filter.metric);
      if (filter.project_id !== undefined) query = query.where('project_id', '=', filter.project_id);
      if (filter.state !== undefined) query = query.where('current_state', '=', filter.state);
      const rows = await query.orderBy('seq').execute();
      return rows.map(toAlertRule);
    },

    async get(accountId, id) {
      const row = await byAccount(accountId).where('id', '=', id).executeTakeFirst();
      return row && toAlertRule(row);
    },

    update(accountId, id, patch, nowIso) {
      const { enabled, ...rest } = patch;
      return db.transaction().execute(async (trx) => {
        const row = await trx
          .updateTable('alert_rules')
          .set({ ...rest, ...(enabled === undefined ? {} : { enabled: enabled ? 1 : 0 }), updated_at: nowIso })
          .where('account_id', '=', accountId)
          .where('id', '=', id)
          .returningAll()
          .executeTakeFirst();
        if (row) await changed(trx, accountId);
        return row && toAlertRule(row);
      });
    },

    delete(accountId, id) {
      return db.transaction().execute(async (trx) => {
        const result = await trx.deleteFrom('alert_rules').where('account_id', '=', accountId).where('id', '=', id).executeTakeFirst();
        if (result.numDeletedRows === 0n) return false;
        // After the rule row: a transition committed meanwhile (it held that row) is seen and goes too.
        await deleteHistoryOf(trx, accountId, id);
        await changed(trx, accountId);
        return true;
      });
    },

    saveEvaluation(accountId, id, evaluation, event, fence, transition) {
      return db.transaction().execute(async (trx) => {
        if (fence) await checkFence(trx, adapter, fence);
        let update = trx
          .updateTable('alert_rules')
          .set(evaluation)
          .where('account_id', '=', accountId)
          .where('id', '=', id)
          .returning(['project_id', 'metric']);
        if (event) update = update.where('enabled', '=', 1);
        const rule = await update.executeTakeFirst();
        if (!rule) return false;
        // A state change: other instances' cached lists show it as soon as it commits.
        await changed(trx, accountId);
        // Silences are read here, in the transaction that writes the event, not from a cache:
        // whichever instance created one, it holds back every event written after it committed.
        const silenceId = event ? await silenceHolding(trx, accountId, { id, project_id: rule.project_id, metric: rule.metric }, event.created_at) : undefined;
        if (transition) await insertTransition(trx, accountId, id, transition, silenceId ?? null);
        if (event) {
          // A silenced event is still written (the outbox and the history show it), without deliveries.
          await trx.insertInto('alert_events').values(event).execute();
          const deliveries = silenceId === undefined ? await insertDeliveriesForEvent(trx, event, deliveryAttempts, Date.parse(event.created_at)) : 0;
          // Any instance's worker may send them: wake them all when this commits.
          if (deliveries > 0) await adapter.notifyWithin(trx, CHANNELS.deliveries, '');
        }
        return true;
      });
    },

    async saveEvaluations(evaluations, fence) {
      if (evaluations.length === 0) return;
      await db.transaction().execute(async (trx) => {
        if (fence) await checkFence(trx, adapter, fence);
        for (const { accountId, id, evaluation } of evaluations) {
          await trx.updateTable('alert_rules').set(evaluation).where('account_id', '=', accountId).where('id', '=', id).execute();
        }
        // One notification for the whole flush: cached lists are read again.
        await changed(trx);
      });
    },

    async listEnabled(shard) {
      const rows = await db.selectFrom('alert_rules').selectAll().where('shard', '=', shard).where('enabled', '=', 1).orderBy('seq').execute();
      return rows.map(toAlertRule);
    },
  };
}
