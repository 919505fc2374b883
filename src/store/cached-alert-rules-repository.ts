import type { AlertRule, AlertRuleFilter } from '../domain/alert-rules.js';
import type { AlertRulesRepository } from './alert-rules-repository.js';

/**
 * Keeps each account's rules in memory once read, so reads (the bulk of API traffic) skip
 * SQLite row decoding. Every write of this process goes through here and drops the
 * account's entry after it commits; a per-account version stops a read that raced with a
 * write from caching what it saw before the write. Only valid while this process is the
 * only writer of rules (the single-process SQLite mode).
 */
export function createCachedAlertRulesRepository(inner: AlertRulesRepository): AlertRulesRepository {
  const rulesByAccount = new Map<string, readonly AlertRule[]>();
  const versions = new Map<string, number>();

  const invalidate = (accountId: string) => {
    rulesByAccount.delete(accountId);
    versions.set(accountId, (versions.get(accountId) ?? 0) + 1);
  };

  async function all(accountId: string): Promise<readonly AlertRule[]> {
    const cached = rulesByAccount.get(accountId);
    if (cached) return cached;
    const version = versions.get(accountId) ?? 0;
    const rules = Object.freeze(await inner.list(accountId, {}));
    if ((versions.get(accountId) ?? 0) === version) rulesByAccount.set(accountId, rules);
    return rules;
  }

  const matches = (rule: AlertRule, filter: AlertRuleFilter) =>
    (filter.enabled === undefined || rule.enabled === filter.enabled) &&
    (filter.metric === undefined || rule.metric === filter.metric) &&
    (filter.project_id === undefined || rule.project_id === filter.project_id) &&
    (filter.state === undefined || rule.current_state === filter.state);

  /** Runs a write and invalidates the account whether or not it succeeded. */
  async function writing<T>(accountId: string, write: () => Promise<T>): Promise<T> {
    invalidate(accountId);
    try {
      return await write();
    } finally {
      invalidate(accountId);
    }
  }

  return {
    insertWithinLimit: (accountId, rule, limit) => writing(accountId, () => inner.insertWithinLimit(accountId, rule, limit)),
    async list(accountId, filter) {
      return (await all(accountId)).filter((rule) => matches(rule, filter));
    },
    async get(accountId, id) {
      return (await all(accountId)).find((rule) => rule.id === id);
    },
    update: (accountId, id, patch, nowIso) => writing(accountId, () => inner.update(accountId, id, patch, nowIso)),
    delete: (accountId, id) => writing(accountId, () => inner.delete(accountId, id)),
    saveEvaluation: (accountId, id, evaluation, event) =>
      writing(accountId, () => inner.saveEvaluation(accountId, id, evaluation, event)),
    async saveEvaluations(evaluations) {
      for (const { accountId } of evaluations) invalidate(accountId);
      try {
        await inner.saveEvaluations(evaluations);
      } finally {
        for (const { accountId } of evaluations) invalidate(accountId);
      }
    },
    listEnabled: () => inner.listEnabled(),
  };
}
