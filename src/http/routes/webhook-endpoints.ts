import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { WebhookEndpoint as EndpointRecord } from '../../domain/webhook-endpoints.js';
import type { WebhookEndpointsService } from '../../domain/webhook-endpoints-service.js';
import {
  CreateWebhookEndpointBody,
  EndpointIdParams,
  errorResponses,
  RotatedSecret,
  RotateSecretQuery,
  UpdateWebhookEndpointBody,
  WebhookEndpoint,
  WebhookEndpointCreated,
  WebhookEndpointList,
  WebhookEndpointQuery,
} from '../schemas.js';

const TAGS = ['Webhook endpoints'];

function publicEndpoint<T extends EndpointRecord>(endpoint: T): Omit<T, 'account_id'> {
  const { account_id: _account, ...rest } = endpoint;
  return rest;
}

export const webhookEndpointRoutes: FastifyPluginAsyncTypebox<{ endpoints: WebhookEndpointsService }> = async (
  app,
  { endpoints },
) => {
  app.get(
    '/v1/webhook-endpoints',
    {
      schema: {
        tags: TAGS,
        operationId: 'listWebhookEndpoints',
        summary: 'List webhook endpoints',
        querystring: WebhookEndpointQuery,
        response: { 200: WebhookEndpointList, ...errorResponses(400, 401, 500) },
      },
    },
    async (request) => ({ data: (await endpoints.list(request.accountId, request.query)).map(publicEndpoint) }),
  );

  app.post(
    '/v1/webhook-endpoints',
    {
      schema: {
        tags: TAGS,
        operationId: 'createWebhookEndpoint',
        summary: 'Create a webhook endpoint',
        description: 'Registers a receiver; the response carries its signing secret, shown only this once.',
        body: CreateWebhookEndpointBody,
        response: { 201: WebhookEndpointCreated, ...errorResponses(400, 401, 409, 413, 415, 422, 500) },
      },
    },
    async (request, reply) => reply.status(201).send(publicEndpoint(await endpoints.create(request.accountId, request.body))),
  );

  app.get(
    '/v1/webhook-endpoints/:endpoint_id',
    {
      schema: {
        tags: TAGS,
        operationId: 'getWebhookEndpoint',
        summary: 'Get a webhook endpoint',
        params: EndpointIdParams,
        response: { 200: WebhookEndpoint, ...errorResponses(401, 404, 422, 500) },
      },
    },
    async (request) => publicEndpoint(await endpoints.get(request.accountId, request.params.endpoint_id)),
  );

  app.patch(
    '/v1/webhook-endpoints/:endpoint_id',
    {
      schema: {
        tags: TAGS,
        operationId: 'updateWebhookEndpoint',
        summary: 'Update a webhook endpoint',
        description: 'Changes only the fields given; a given headers map replaces the old one.',
        params: EndpointIdParams,
        body: UpdateWebhookEndpointBody,
        response: { 200: WebhookEndpoint, ...errorResponses(400, 401, 404, 413, 415, 422, 500) },
      },
    },
    async (request) => publicEndpoint(await endpoints.update(request.accountId, request.params.endpoint_id, request.body)),
  );

  app.delete(
    '/v1/webhook-endpoints/:endpoint_id',
    {
      schema: {
        tags: TAGS,
        operationId: 'deleteWebhookEndpoint',
        summary: 'Delete a webhook endpoint',
        params: EndpointIdParams,
        response: { 204: Type.Null({ description: 'Deleted.' }), ...errorResponses(401, 404, 422, 500) },
      },
    },
    async (request, reply) => {
      await endpoints.delete(request.accountId, request.params.endpoint_id);
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/v1/webhook-endpoints/:endpoint_id/rotate-secret',
    {
      schema: {
        tags: TAGS,
        operationId: 'rotateWebhookSigningSecret',
        summary: 'Rotate the signing secret',
        description:
          'Issues a new signing secret; the previous one stops signing at once, or (ours) keeps signing for `overlap` ' +
          'beside the new one.',
        params: EndpointIdParams,
        querystring: RotateSecretQuery,
        response: { 200: RotatedSecret, ...errorResponses(400, 401, 404, 422, 500) },
      },
    },
    async (request) => endpoints.rotateSecret(request.accountId, request.params.endpoint_id, request.query.overlap),
  );
};
