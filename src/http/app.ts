import { randomUUID } from 'node:crypto';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import secureJson from 'secure-json-parse';
import { Type } from 'typebox';
import type { AlertRulesService } from '../domain/alert-rules-service.js';
import type { ApiKeysService } from '../domain/api-keys-service.js';
import type { DeliveriesService } from '../domain/deliveries-service.js';
import type { TelemetryService } from '../domain/telemetry-service.js';
import type { WebhookEndpointsService } from '../domain/webhook-endpoints-service.js';
import { requireApiKey } from './auth.js';
import { registerErrorHandling } from './error-handler.js';
import { alertRuleRoutes } from './routes/alert-rules.js';
import { alertRoutes } from './routes/alerts.js';
import { deliveryRoutes } from './routes/deliveries.js';
import { telemetryRoutes } from './routes/telemetry.js';
import { webhookEndpointRoutes } from './routes/webhook-endpoints.js';
import { WebhookEventBody } from './schemas.js';
import { createValidatorCompiler } from './validation.js';

/** Largest request body accepted; larger ones are answered with 413. */
export const BODY_LIMIT_BYTES = 1024 * 1024;

export interface HttpDeps {
  logger: Logger;
  apiKeys: ApiKeysService;
  rules: AlertRulesService;
  endpoints: WebhookEndpointsService;
  telemetry: TelemetryService;
  deliveries: DeliveriesService;
  /** Answers the health check; throws when the service cannot serve. */
  checkHealth: () => Promise<void>;
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'same-origin',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'cache-control': 'no-store',
} as const;

function webhookOperation(summary: string) {
  return {
    post: {
      summary,
      requestBody: { required: true, content: { 'application/json': { schema: WebhookEventBody } } },
      responses: { 200: { description: 'Any 2xx within the endpoint timeout acknowledges the event.' } },
    },
  };
}

/** Builds the HTTP application: every route, schema, hook and error mapping. */
export async function buildHttpApp(deps: HttpDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT_BYTES,
    // A caller's request id is kept when it is sane, so logs can be joined across services.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    return503OnClosing: true,
    // Long but well-formed IDs reach the route and get the contract's 404, not a 414.
    routerOptions: { maxParamLength: 512 },
    // URLs the router cannot even decode still get our JSON error shape and headers.
    frameworkErrors: (error, request, reply) => {
      const tooLong = error.code === 'FST_ERR_MAX_PARAM_LENGTH';
      const message = tooLong ? 'a path segment is longer than 512 characters' : 'the URL path is not valid (bad percent-encoding)';
      void (reply as FastifyReply)
        .header('x-request-id', request.id)
        .headers(SECURITY_HEADERS)
        .status(tooLong ? 414 : 400)
        .send({ message });
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.setValidatorCompiler(createValidatorCompiler());
  registerErrorHandling(app);

  // JSON is the only body type (anything else is 415). Replaces Fastify's parser so that a JSON content type with an empty body (common
  // on POST /rotate-secret) is "no body" rather than an error; bodies are parsed with
  // prototype-poisoning protection.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = body as string;
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, secureJson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' }));
    } catch (error) {
      done(Object.assign(new SyntaxError((error as Error).message), { statusCode: 400 }), undefined);
    }
  });

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    if (!request.url.startsWith('/docs')) reply.headers(SECURITY_HEADERS);
  });

  // An answer sent before the whole request arrived (a 415, an unknown route, a failed
  // auth check) leaves the rest of the body unread while the client may still be sending
  // it. Close such a connection, as Fastify does for its own body errors: otherwise the
  // half-read upload keeps it busy and a graceful shutdown waits for the keep-alive timeout.
  app.addHook('onSend', async (request, reply) => {
    if (!request.raw.complete) reply.header('connection', 'close');
  });

  // Once shutdown starts, a response to a request that was already in flight ends its
  // connection: otherwise a keep-alive connection stays open and the server never closes.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', async (_request, reply) => {
    if (closing) reply.header('connection', 'close');
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Alerts API (self-hosted, PolyAI-compatible)',
        version: '1.0.0',
        description:
          'Alert rules over voice-agent telemetry, active alerts, and signed webhook delivery. ' +
          'Wire-compatible with the PolyAI Alerts API 1.0.0.',
      },
      components: { securitySchemes: { ApiKeyAuth: { type: 'apiKey', in: 'header', name: 'x-api-key' } } },
      security: [{ ApiKeyAuth: [] }],
      webhooks: {
        alertsTriggered: webhookOperation('alerts.triggered: a rule moved into the alert state.'),
        alertsResolved: webhookOperation('alerts.resolved: a firing rule moved back to ok.'),
      },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true });

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  app.get(
    '/healthz',
    { schema: { hide: true, response: { 200: Type.Object({ status: Type.String() }), 503: Type.Object({ status: Type.String() }) } } },
    async (request, reply) => {
      try {
        await deps.checkHealth();
        return { status: 'ok' };
      } catch (error) {
        request.log.error({ err: error }, 'health check failed');
        return reply.status(503).send({ status: 'unavailable' });
      }
    },
  );

  await app.register(async (v1) => {
    requireApiKey(v1, deps.apiKeys);
    await v1.register(alertRuleRoutes, { rules: deps.rules });
    await v1.register(alertRoutes, { rules: deps.rules });
    await v1.register(webhookEndpointRoutes, { endpoints: deps.endpoints });
    await v1.register(telemetryRoutes, { telemetry: deps.telemetry });
    await v1.register(deliveryRoutes, { deliveries: deps.deliveries });
  });

  return app;
}
