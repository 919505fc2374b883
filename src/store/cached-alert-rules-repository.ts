import type { AlertRule, AlertRuleFilter } from '../domain/alert-rules.js';
import type { AlertRulesRepository } from '../domain/ports/alert-rules-repository.js';
import { CHANNELS, type Change, type Notifications } from '../domain/ports/notifications.js';
import { createWriteInvalidatedCache } from './write-invalidated-cache.js';


/**
 * Keeps each account's rules in memory once read, so reads (the bulk of API traffic) skip a
 * query and row decoding. Writes of this process go through here; writes of other processes
 * (rule edits, state changes, the owners' value flushes) arrive as notifications sent when
 * they commit, and are forgotten then. While notifications may be missed, nothing is served
 * from memory.
 */
export function createCachedAlertRulesRepository(inner: AlertRulesRepository, notifications: Notifications): AlertRulesRepository {
  const cache = createWriteInvalidatedCache<readonly AlertRule[]>(() => notifications.live);
  notifications.listen(CHANNELS.changes, (payload) => {
    const change = JSON.parse(payload) as Change;
    // An edit or a state change names its account; a flush of values (each second) names none.
    if (change.kind === 'rules') cache.invalidate(change.account_id === undefined ? undefined : [change.account_id]);
  });
  notifications.onResync(() => cache.invalidate());
  const all = async (accountId: string): Promise<readonly AlertRule[]> =>
    (await cache.read(accountId, async () => Object.freeze(await inner.list(accountId, {}))))!;

  const matches = (rule: AlertRule, filter: AlertRuleFilter) =>
    (filter.enabled === undefined || rule.enabled === filter.enabled) &&
    (filter.metric === undefined || rule.metric === filter.metric) &&
    (filter.project_id === undefined || rule.project_id === filter.project_id) &&
    (filter.state === undefined || rule.current_state === filter.state);

  return {
    insertWithinLimit: (accountId, rule, limit) => cache.writing(accountId, () => inner.insertWithinLimit(accountId, rule, limit)),
    async list(accountId, filter) {
      return (await all(accountId)).filter((rule) => matches(rule, filter));
    },
    async get(accountId, id) {
      return (await all(accountId)).find((rule) => rule.id === id);
    },
    update: (accountId, id, patch, nowIso) => cache.writing(accountId, () => inner.update(accountId, id, patch, nowIso)),
    delete: (accountId, id) => cache.writing(accountId, () => inner.delete(accountId, id)),
    saveEvaluation: (accountId, id, evaluation, event, fence, transition) =>
      cache.writing(accountId, () => inner.saveEvaluation(accountId, id, evaluation, event, fence, transition)),
    saveEvaluations: (evaluations, fence) =>
      cache.writing(
        evaluations.map((e) => e.accountId),
        () => inner.saveEvaluations(evaluations, fence),
      ),
    listEnabled: (shard) => inner.listEnabled(shard),
  };
}
