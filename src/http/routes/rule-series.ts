import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { toIso } from '../../domain/clock.js';
import type { RuleSeries as RuleSeriesResult, RuleSeriesService } from '../../domain/rule-series-service.js';
import { errorResponses, PreviewAlertRuleBody, RuleIdParams, RulePreview, RuleSeries, SeriesQuery } from '../schemas.js';

const TAGS = ['Alert rules'];
const OURS = ' Not part of the PolyAI contract.';
const FROM_THE_DATABASE =
  ' Computed from the database (the last two hours per second, older telemetry per minute), so any instance answers it. ' +
  'Telemetry that arrived late counts where it belongs, so a past point may differ from what the evaluator could see then.';

function wire(series: RuleSeriesResult) {
  const { condition, range } = series;
  return {
    project_id: condition.project_id,
    metric: condition.metric,
    operator: condition.operator,
    threshold_value: condition.threshold_value,
    window_duration: condition.window_duration,
    from: toIso(range.from),
    to: toIso(range.to),
    step: range.step,
    per_second_after: toIso(series.perSecondAfter),
    points: series.points.map((p) => ({ at: toIso(p.at), value: p.value, state: p.state as 'ok' | 'alert' | 'no_data' })),
  };
}

export const ruleSeriesRoutes: FastifyPluginAsyncTypebox<{ series: RuleSeriesService }> = async (app, { series }) => {
  app.get(
    '/v1/alert-rules/:rule_id/series',
    {
      schema: {
        tags: TAGS,
        operationId: 'getAlertRuleSeries',
        summary: "An alert rule's metric over time",
        description:
          'The rule’s metric and state at regular points (default: the last hour every 10 s), as the evaluator would have ' +
          'computed them with the rule’s current settings (enabled or not).' +
          FROM_THE_DATABASE +
          OURS,
        params: RuleIdParams,
        querystring: SeriesQuery,
        response: { 200: RuleSeries, ...errorResponses(400, 401, 404, 422, 500) },
      },
    },
    async (request) => wire(await series.series(request.accountId, request.params.rule_id, request.query)),
  );

  app.post(
    '/v1/alert-rules/preview',
    {
      schema: {
        tags: TAGS,
        operationId: 'previewAlertRule',
        summary: 'Preview a candidate alert rule',
        description:
          'What a rule with these settings would have done over the range: its series, every transition and how many ' +
          'alerts.triggered it would have sent. Validated as POST /v1/alert-rules (same 400 messages); nothing is stored ' +
          'and it does not count toward the 10 rules of an account.' +
          FROM_THE_DATABASE +
          OURS,
        body: PreviewAlertRuleBody,
        response: { 200: RulePreview, ...errorResponses(400, 401, 413, 415, 500) },
      },
    },
    async (request) => {
      const { from, to, step, ...rule } = request.body;
      const result = await series.preview(request.accountId, rule, { from, to, step });
      const transitions = result.transitions.map((t) => ({
        at: toIso(t.at),
        from_state: t.from_state,
        to_state: t.to_state as 'ok' | 'alert' | 'no_data',
        value: t.value,
        event_type: t.event_type,
      }));
      return { ...wire(result), transitions, triggered_count: transitions.filter((t) => t.event_type === 'alerts.triggered').length };
    },
  );
};
