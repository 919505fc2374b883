import type { AlertRulesRepository, RuleEvaluation } from './ports/alert-rules-repository.js';
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

/** What the rule use cases need of the evaluation engine. */
export interface RuleEvaluator {
  /**
   * Evaluates a new or changed rule now and returns its committed evaluation (with several
   * instances: the owner's, or `unknown` when the owner did not answer within a second).
   */
  ruleChanged(rule: AlertRule): Promise<RuleEvaluation>;
  ruleDeleted(accountId: string, ruleId: string): void;
  /** The latest in-memory evaluation of an enabled rule, if any. */
  evaluationOf(ruleId: string): RuleEvaluation | undefined;
}

/** Alert rule use cases; the HTTP layer calls these with validated input. */
export function createAlertRulesService(deps: { rules: AlertRulesRepository; evaluator: RuleEvaluator; clock: Clock }): AlertRulesService {
  const { rules, evaluator, clock } = deps;
  // The engine's evaluation is the freshest; the row may lag by one flush interval.
  const current = (rule: AlertRule): AlertRule => {
    const evaluation = evaluator.evaluationOf(rule.id);
    return evaluation ? { ...rule, ...evaluation } : rule;
  };

  return {
    async create(accountId, input) {
      const createdAt = toIso(clock.now());
      const created = await rules.insertWithinLimit(
        accountId,
        { ...settingsFromInput(input), id: newId(ID_PREFIX.alertRule), current_state: 'unknown', since: createdAt, created_at: createdAt },
        MAX_ALERT_RULES_PER_ACCOUNT,
      );
      if (created === 'limit_exceeded') {
        throw new AppError('limitExceeded', `alert rule limit reached: an account can have at most ${MAX_ALERT_RULES_PER_ACCOUNT} alert rules`);
      }
      return { ...created, ...(await evaluator.ruleChanged(created)) };
    },

    async list(accountId, filter) {
      const { state, ...stored } = filter;
      const all = (await rules.list(accountId, stored)).map(current);
      return state === undefined ? all : all.filter((rule) => rule.current_state === state);
    },

    async get(accountId, id) {
      const rule = await rules.get(accountId, id);
      if (!rule) throw notFound('alert rule', id);
      return current(rule);
    },

    async update(accountId, id, patch) {
      const rule = await rules.update(accountId, id, patch, toIso(clock.now()));
      if (!rule) throw notFound('alert rule', id);
      return { ...rule, ...(await evaluator.ruleChanged(rule)) };
    },

    async delete(accountId, id) {
      if (!(await rules.delete(accountId, id))) throw notFound('alert rule', id);
      evaluator.ruleDeleted(accountId, id);
    },
  };
}
