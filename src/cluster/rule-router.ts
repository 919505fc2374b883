import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { RuleEvaluator } from '../domain/alert-rules-service.js';
import type { AlertRulesRepository, RuleEvaluation } from '../domain/ports/alert-rules-repository.js';
import { CHANNELS, type Notifications, type RuleRequest } from '../domain/ports/notifications.js';
import type { Engine } from '../engine/engine.js';

/** How long a request waits for the owner's evaluation of a rule changed here. */
export const OWNER_ANSWER_MS = 1000;

/**
 * Rule changes through any instance reach the rule's owner. On the owner (always, in the
 * single-server mode) the engine evaluates at once, as before. Elsewhere the change is
 * committed already; the owner is asked (a notification naming the rule), reads the rule,
 * evaluates it under its fence and answers; the request answers with the owner's committed
 * evaluation if that comes within OWNER_ANSWER_MS, otherwise with `unknown` (the owner goes
 * on, and its periodic reread of its rules covers a request that was lost).
 */
export function createRuleRouter(deps: { engine: Engine; notifications: Notifications; rules: AlertRulesRepository; logger: Logger; answerMs?: number }): RuleEvaluator {
  const { engine, notifications, rules, logger } = deps;
  const waiting = new Map<string, () => void>();

  notifications.listen(CHANNELS.evaluated, (requestId) => waiting.get(requestId)?.());
  notifications.listen(CHANNELS.rules, (payload) => {
    const request = JSON.parse(payload) as RuleRequest;
    if (!engine.owns(request.account_id)) return;
    void (async () => {
      const rule = await rules.get(request.account_id, request.rule_id);
      if (rule) await engine.ruleChanged(rule);
      else engine.ruleDeleted(request.account_id, request.rule_id);
      await notifications.notify(CHANNELS.evaluated, request.request_id);
    })().catch((error: unknown) => logger.error({ err: error, rule_id: request.rule_id }, 'evaluating a rule changed through another instance failed'));
  });

  async function ask(accountId: string, ruleId: string): Promise<boolean> {
    const request: RuleRequest = { request_id: randomUUID(), account_id: accountId, rule_id: ruleId };
    let timer: NodeJS.Timeout | undefined;
    const answered = new Promise<boolean>((resolve) => {
      waiting.set(request.request_id, () => resolve(true));
      timer = setTimeout(() => resolve(false), deps.answerMs ?? OWNER_ANSWER_MS);
    });
    await notifications.notify(CHANNELS.rules, JSON.stringify(request));
    try {
      return await answered;
    } finally {
      clearTimeout(timer);
      waiting.delete(request.request_id);
    }
  }

  return {
    async ruleChanged(rule) {
      const local = await engine.ruleChanged(rule);
      if (local) return local;
      if (await ask(rule.account_id, rule.id)) {
        const stored = await rules.get(rule.account_id, rule.id);
        if (stored) {
          const { current_state, since, last_evaluated_at, current_value } = stored;
          return { current_state, since, last_evaluated_at, current_value };
        }
      }
      // Not evaluated yet (no owner answered in time): documented as `unknown`.
      const unknown: RuleEvaluation = { current_state: 'unknown', since: rule.since, last_evaluated_at: rule.last_evaluated_at, current_value: null };
      return unknown;
    },

    ruleDeleted(accountId, ruleId) {
      if (!engine.ruleDeleted(accountId, ruleId)) void ask(accountId, ruleId);
    },

    evaluationOf: (ruleId) => engine.evaluationOf(ruleId),
  };
}
