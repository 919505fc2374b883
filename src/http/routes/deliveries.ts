import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { DeliveriesService, DeliveryView } from '../../domain/deliveries-service.js';
import { toIso } from '../../domain/clock.js';
import { Delivery, DeliveryIdParams, DeliveryList, DeliveryQuery, EndpointIdParams, errorResponses, TestDeliveryResult } from '../schemas.js';

const TAGS = ['Webhook deliveries'];
const OURS = ' Not part of the PolyAI contract.';

function wire(view: DeliveryView) {
  return {
    id: view.id,
    event_id: view.event_id,
    event_type: view.event_type as 'alerts.triggered' | 'alerts.resolved',
    status: view.status,
    attempt_count: view.attempts,
    next_attempt_at: view.next_attempt_at === null ? null : toIso(view.next_attempt_at),
    last_error: view.last_error,
    created_at: view.created_at,
    updated_at: view.updated_at,
    attempts: view.attempt_log.map(({ delivery_id: _id, ...attempt }) => attempt),
  };
}

export const deliveryRoutes: FastifyPluginAsyncTypebox<{ deliveries: DeliveriesService }> = async (app, { deliveries }) => {
  app.get(
    '/v1/webhook-endpoints/:endpoint_id/deliveries',
    {
      schema: {
        tags: TAGS,
        operationId: 'listWebhookDeliveries',
        summary: 'List recent deliveries of an endpoint',
        description: 'The 100 most recent deliveries, newest first, each with its attempts and next attempt time.' + OURS,
        params: EndpointIdParams,
        querystring: DeliveryQuery,
        response: { 200: DeliveryList, ...errorResponses(400, 401, 404, 422, 500) },
      },
    },
    async (request) => ({
      data: (await deliveries.list(request.accountId, request.params.endpoint_id, request.query)).map(wire),
    }),
  );

  app.post(
    '/v1/webhook-endpoints/:endpoint_id/deliveries/:delivery_id/retry',
    {
      schema: {
        tags: TAGS,
        operationId: 'retryWebhookDelivery',
        summary: 'Re-send a delivery now',
        description:
          'Queues one more attempt of a failed or delivered delivery, with the same event id, and answers at once; ' +
          'a pending delivery is left as it is.' + OURS,
        params: DeliveryIdParams,
        response: { 202: Delivery, ...errorResponses(401, 404, 422, 500) },
      },
    },
    async (request, reply) =>
      reply.status(202).send(wire(await deliveries.retry(request.accountId, request.params.endpoint_id, request.params.delivery_id))),
  );

  app.post(
    '/v1/webhook-endpoints/:endpoint_id/test',
    {
      schema: {
        tags: TAGS,
        operationId: 'sendTestWebhook',
        summary: 'Send a test webhook',
        description:
          'Sends a signed sample alerts.triggered event (with "test": true in the body) to the endpoint and answers with ' +
          'the outcome of that single attempt. Nothing is recorded or retried.' + OURS,
        params: EndpointIdParams,
        response: { 200: TestDeliveryResult, ...errorResponses(401, 404, 422, 500) },
      },
    },
    async (request) => {
      const result = await deliveries.sendTest(request.accountId, request.params.endpoint_id);
      return {
        delivered: result.delivered,
        event_id: result.eventId,
        status_code: result.statusCode,
        error_class: result.errorClass,
        error: result.error,
        duration_ms: Math.round(result.durationMs),
        response_body: result.responseBody,
      };
    },
  );
};
