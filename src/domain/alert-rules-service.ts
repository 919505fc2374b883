import type { AlertRulesRepository, RuleEvaluation } from './ports/alert-rules-repository.js';
import type { SilencesRepository } from './ports/silences-repository.js';
import {
  holdDurationProblems,
  MAX_ALERT_RULES_PER_ACCOUNT,
  settingsFromInput,
  type AlertRule,
  type AlertRuleFilter,
  type AlertRulePatch,
  type NewAlertRuleInput,
} from './alert-rules.js';
import { toIso, type Clock } from './clock.js';
import { AppError, invalidRequest, notFound } from './errors.js';
import { ID_PREFIX, newId } from './ids.js';
import { silencingOf, type RuleSilencing } from './silences.js';

/** A rule as the API shows it: with whether a silence matches it now (ours). */
export type AlertRuleView = AlertRule & RuleSilencing;

export interface AlertRulesService {
  create(accountId: string, input: NewAlertRuleInput): Promise<AlertRuleView>;
  list(accountId: string, filter: AlertRuleFilter): Promise<AlertRuleView[]>;
  get(accountId: string, id: string): Promise<AlertRuleView>;
  update(accountId: string, id: string, patch: AlertRulePatch): Promise<AlertRuleView>;
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

/** Pending and keep-firing periods longer than allowed are a 400 naming the field; nothing changes. */
export function checkHoldDurations(input: Parameters<typeof holdDurationProblems>[0]): void {
  const problems = holdDurationProblems(input);
  if (problems.length > 0) throw invalidRequest('validation', 'invalid request body', problems);
}

/** Alert rule use cases; the HTTP layer calls these with validated input. */
export function createAlertRulesService(deps: {
  rules: AlertRulesRepository;
  evaluator: RuleEvaluator;
  clock: Clock;
  silences: Pick<SilencesRepository, 'activeAt'>;
}): AlertRulesService {
  const { rules, evaluator, clock, silences } = deps;
  // The engine's evaluation is the freshest; the row may lag by one flush interval.
  const current = (rule: AlertRule): AlertRule => {
    const evaluation = evaluator.evaluationOf(rule.id);
    return evaluation ? { ...rule, ...evaluation } : rule;
  };
  // Read from the database on each answer (one indexed query for a whole list): a silence
  // created through any instance shows at once.
  const withSilencing = async (accountId: string, list: readonly AlertRule[]): Promise<AlertRuleView[]> => {
    if (list.length === 0) return [];
    const active = await silences.activeAt(accountId, toIso(clock.now()));
    return list.map((rule) => ({ ...rule, ...silencingOf(rule, active) }));
  };
  const one = async (accountId: string, rule: AlertRule): Promise<AlertRuleView> => (await withSilencing(accountId, [rule]))[0]!;

  return {
    async create(accountId, input) {
      checkHoldDurations(input);
      const createdAt = toIso(clock.now());
      const created = await rules.insertWithinLimit(
        accountId,
        { ...settingsFromInput(input), id: newId(ID_PREFIX.alertRule), current_state: 'unknown', since: createdAt, created_at: createdAt },
        MAX_ALERT_RULES_PER_ACCOUNT,
      );
      if (created === 'limit_exceeded') {
        throw new AppError('limitExceeded', `alert rule limit reached: an account can have at most ${MAX_ALERT_RULES_PER_ACCOUNT} alert rules`);
      }
      return one(accountId, { ...created, ...(await evaluator.ruleChanged(created)) });
    },

    async list(accountId, filter) {
      const { state, ...stored } = filter;
      const all = (await rules.list(accountId, stored)).map(current);
      return withSilencing(accountId, state === undefined ? all : all.filter((rule) => rule.current_state === state));
    },

    async get(accountId, id) {
      const rule = await rules.get(accountId, id);
      if (!rule) throw notFound('alert rule', id);
      return one(accountId, current(rule));
    },

    async update(accountId, id, patch) {
      checkHoldDurations(patch);
      const rule = await rules.update(accountId, id, patch, toIso(clock.now()));
      if (!rule) throw notFound('alert rule', id);
      return one(accountId, { ...rule, ...(await evaluator.ruleChanged(rule)) });
    },

    async delete(accountId, id) {
      if (!(await rules.delete(accountId, id))) throw notFound('alert rule', id);
      evaluator.ruleDeleted(accountId, id);
    },
  };
}
