import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { RuleHistoryService } from '../../domain/rule-history-service.js';
import { errorResponses, RuleHistoryPage, RuleHistoryQuery, RuleIdParams } from '../schemas.js';

const TAGS = ['Alert rules'];
const OURS = ' Not part of the PolyAI contract.';

export const ruleHistoryRoutes: FastifyPluginAsyncTypebox<{ history: RuleHistoryService }> = async (app, { history }) => {
  app.get(
    '/v1/alert-rules/:rule_id/history',
    {
      schema: {
        tags: TAGS,
        operationId: 'listAlertRuleHistory',
        summary: "List an alert rule's state transitions",
        description:
          'Every change of state of the rule, newest first, with the event it sent (if any) and the threshold, operator and ' +
          'window the rule had at that moment. Kept for ALERTS_HISTORY_RETENTION (30 days by default); deleted with the rule. ' +
          'Pages through `next_cursor`: transitions written meanwhile only appear on a new first page, so pages neither ' +
          'repeat nor skip one. A `cursor` that is not a `next_cursor` is a 400.' +
          OURS,
        params: RuleIdParams,
        querystring: RuleHistoryQuery,
        response: { 200: RuleHistoryPage, ...errorResponses(400, 401, 404, 422, 500) },
      },
    },
    async (request) => {
      const page = await history.page(request.accountId, request.params.rule_id, request.query);
      // `seq` is the cursor's business: it stays out of the answer.
      return { data: page.data.map(({ seq: _seq, ...transition }) => transition), next_cursor: page.next_cursor };
    },
  );
};
