import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { AlertRule as AlertRuleRecord } from '../../domain/alert-rules.js';
import type { AlertRulesService } from '../../domain/alert-rules-service.js';
import {
  AlertRule,
  AlertRuleList,
  AlertRuleQuery,
  CreateAlertRuleBody,
  errorResponses,
  RuleIdParams,
  UpdateAlertRuleBody,
} from '../schemas.js';

const TAGS = ['Alert rules'];

/** The public fields of a rule (the account it belongs to is implied by the key). */
export function publicRule(rule: AlertRuleRecord): Omit<AlertRuleRecord, 'account_id'> {
  const { account_id: _account, ...rest } = rule;
  return rest;
}

export const alertRuleRoutes: FastifyPluginAsyncTypebox<{ rules: AlertRulesService }> = async (app, { rules }) => {
  app.get(
    '/v1/alert-rules',
    {
      schema: {
        tags: TAGS,
        operationId: 'listAlertRules',
        summary: 'List alert rules',
        description: 'Every alert rule of the account, oldest first, optionally filtered.',
        querystring: AlertRuleQuery,
        response: { 200: AlertRuleList, ...errorResponses(400, 401, 500) },
      },
    },
    async (request) => ({ data: (await rules.list(request.accountId, request.query)).map(publicRule) }),
  );

  app.post(
    '/v1/alert-rules',
    {
      schema: {
        tags: TAGS,
        operationId: 'createAlertRule',
        summary: 'Create an alert rule',
        description:
          'Creates a rule; an account holds at most 10. The answer carries its first evaluation. With several instances ' +
          '(README: Running several instances) it is the evaluation committed by the instance that owns the account, or ' +
          '`current_state: "unknown"` when that instance does not answer within a second (it evaluates the rule when it can).',
        body: CreateAlertRuleBody,
        response: { 201: AlertRule, ...errorResponses(400, 401, 409, 413, 415, 422, 500, 502) },
      },
    },
    async (request, reply) => reply.status(201).send(publicRule(await rules.create(request.accountId, request.body))),
  );

  app.get(
    '/v1/alert-rules/:rule_id',
    {
      schema: {
        tags: TAGS,
        operationId: 'getAlertRule',
        summary: 'Get an alert rule',
        params: RuleIdParams,
        response: { 200: AlertRule, ...errorResponses(401, 404, 422, 500) },
      },
    },
    async (request) => publicRule(await rules.get(request.accountId, request.params.rule_id)),
  );

  app.patch(
    '/v1/alert-rules/:rule_id',
    {
      schema: {
        tags: TAGS,
        operationId: 'updateAlertRule',
        summary: 'Update an alert rule',
        description:
          'Changes only the fields given; the answer carries the rule evaluated with them (with several instances, as for ' +
          'create: `unknown` when the owning instance does not answer within a second).',
        params: RuleIdParams,
        body: UpdateAlertRuleBody,
        response: { 200: AlertRule, ...errorResponses(400, 401, 404, 413, 415, 422, 500, 502) },
      },
    },
    async (request) => publicRule(await rules.update(request.accountId, request.params.rule_id, request.body)),
  );

  app.delete(
    '/v1/alert-rules/:rule_id',
    {
      schema: {
        tags: TAGS,
        operationId: 'deleteAlertRule',
        summary: 'Delete an alert rule',
        params: RuleIdParams,
        response: { 204: Type.Null({ description: 'Deleted.' }), ...errorResponses(401, 404, 422, 500) },
      },
    },
    async (request, reply) => {
      await rules.delete(request.accountId, request.params.rule_id);
      return reply.status(204).send(null);
    },
  );
};
