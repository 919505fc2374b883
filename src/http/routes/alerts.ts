import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { AlertRulesService } from '../../domain/alert-rules-service.js';
import { ActiveAlertList, ActiveAlertQuery, errorResponses } from '../schemas.js';

export const alertRoutes: FastifyPluginAsyncTypebox<{ rules: AlertRulesService }> = async (app, { rules }) => {
  app.get(
    '/v1/alerts',
    {
      schema: {
        tags: ['Alerts'],
        operationId: 'listActiveAlerts',
        summary: 'List active alerts',
        description: 'The enabled rules that are firing now.',
        querystring: ActiveAlertQuery,
        response: { 200: ActiveAlertList, ...errorResponses(400, 401, 500) },
      },
    },
    async (request) => {
      const firing = await rules.list(request.accountId, { ...request.query, state: 'alert', enabled: true });
      return {
        data: firing.map((rule) => ({
          alert_rule_id: rule.id,
          name: rule.name,
          project_id: rule.project_id,
          metric: rule.metric,
          operator: rule.operator,
          threshold_value: rule.threshold_value,
          window_duration: rule.window_duration,
          since: rule.since ?? rule.updated_at,
          last_evaluated_at: rule.last_evaluated_at,
          current_value: rule.current_value,
        })),
      };
    },
  );
};
