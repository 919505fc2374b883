import type { AlertRulesRepository } from '../store/alert-rules-repository.js';
import {
  MAX_ALERT_RULES_PER_ACCOUNT,
  settingsFromInput,
  type AlertRule,
  type AlertRuleFilter,
  type AlertRulePatch,
  type NewAlertRuleInput,
} from './alert-rules.js';
import { toIso, type Clock } from './clock.js';
import { AppError, notFound } from './errors.js';
import { ID_PREFIX, newId } from './ids.js';

export interface AlertRulesService {
  create(accountId: string, input: NewAlertRuleInput): Promise<AlertRule>;
  list(accountId: string, filter: AlertRuleFilter): Promise<AlertRule[]>;
  get(accountId: string, id: string): Promise<AlertRule>;
  update(accountId: string, id: string, patch: AlertRulePatch): Promise<AlertRule>;
  delete(accountId: string, id: string): Promise<void>;
}

/** Alert rule use cases; the HTTP layer calls these with validated input. */
export function createAlertRulesService(deps: { rules: AlertRulesRepository; clock: Clock }): AlertRulesService {
  const { rules, clock } = deps;

  return {
    async create(accountId, input) {
      const createdAt = toIso(clock.now());
      const created = await rules.insertWithinLimit(
        accountId,
        // Not evaluated yet: the published docs show a new rule as ok, never evaluated.
        { ...settingsFromInput(input), id: newId(ID_PREFIX.alertRule), current_state: 'ok', since: createdAt, created_at: createdAt },
        MAX_ALERT_RULES_PER_ACCOUNT,
      );
      if (created === 'limit_exceeded') {
        throw new AppError('limitExceeded', `alert rule limit reached: an account can have at most ${MAX_ALERT_RULES_PER_ACCOUNT} alert rules`);
      }
      return created;
    },

    list: (accountId, filter) => rules.list(accountId, filter),

    async get(accountId, id) {
      const rule = await rules.get(accountId, id);
      if (!rule) throw notFound('alert rule', id);
      return rule;
    },

    async update(accountId, id, patch) {
      const rule = await rules.update(accountId, id, patch, toIso(clock.now()));
      if (!rule) throw notFound('alert rule', id);
      return rule;
    },

    async delete(accountId, id) {
      if (!(await rules.delete(accountId, id))) throw notFound('alert rule', id);
    },
  };
}
