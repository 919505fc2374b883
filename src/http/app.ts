import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import secureJson from 'secure-json-parse';
import { Type } from 'typebox';
import type { HttpServerConfig } from '../config.js';
import type { AlertRulesService } from '../domain/alert-rules-service.js';
import type { ApiKeysService } from '../domain/api-keys-service.js';
import type { DeliveriesService } from '../domain/deliveries-service.js';
import type { RuleHistoryService } from '../domain/rule-history-service.js';
import type { RuleSeriesService } from '../domain/rule-series-service.js';
import type { SilencesService } from '../domain/silences-service.js';
import { AppError } from '../domain/errors.js';
import type { TelemetryService } from '../domain/telemetry-service.js';
import type { WebhookEndpointsService } from '../domain/webhook-endpoints-service.js';
import { requireApiKey } from './auth.js';
import { answerUnmetExpectation, createClientErrorHandler } from './client-errors.js';
import { deviationsMarkdown } from './deviations.js';
import { registerErrorHandling } from './error-handler.js';
import { DEFAULT_MAX_JSON_VALUES, exceedsJsonValueBudget } from './json-budget.js';
import { alertRuleRoutes } from './routes/alert-rules.js';
import { alertRoutes } from './routes/alerts.js';
import { ruleHistoryRoutes } from './routes/rule-history.js';
import { ruleSeriesRoutes } from './routes/rule-series.js';
import { silenceRoutes } from './routes/silences.js';
import { deliveryRoutes } from './routes/deliveries.js';
import { telemetryRoutes } from './routes/telemetry.js';
import { webhookEndpointRoutes } from './routes/webhook-endpoints.js';
import { streamRoutes } from './routes/stream.js';
import { consolePlugin } from './console.js';
import { registerOperationsRoutes } from './operations.js';
import type { TelemetryCounters } from './routes/telemetry.js';
import type { Metrics } from '../metrics/metrics.js';
import type { StreamService } from '../domain/stream-service.js';
import { WebhookEventBody } from './schemas.js';
import { createValidatorCompiler } from './validation.js';

/** Largest request body accepted; larger ones are answered with 413. */
export const BODY_LIMIT_BYTES = 1024 * 1024;

export interface HttpDeps {
  logger: Logger;
  apiKeys: ApiKeysService;
  rules: AlertRulesService;
  /** State transitions of rules (ours). */
  history: RuleHistoryService;
  /** Rule series and previews of candidate rules (ours). */
  series: RuleSeriesService;
  endpoints: WebhookEndpointsService;
  telemetry: TelemetryService;
  deliveries: DeliveriesService;
  /** Answers the health check; throws, with a message naming the cause, when the service cannot serve. */
  checkHealth: () => Promise<void>;
  /** Why this instance should not be sent traffic yet (or any more); empty when it is ready. */
  notReady: () => Promise<string[]>;
  /** The live stream of an account's changes (ours). */
  stream: StreamService;
  /** Silences: rules whose events are sent to no endpoint for a while (ours). */
  silences: SilencesService;
  /** What GET /metrics reports; `token`, when set, is required as a bearer token. */
  metrics: { registry: Metrics['registry']; counters: TelemetryCounters; token: string | undefined };
  /** Timeouts and connection limit of the HTTP server. */
  http: HttpServerConfig;
}

/** Request headers must arrive within this, or within the request timeout when shorter. */
const HEADERS_TIMEOUT_MS = 10_000;

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
    // Our own 503 (in the onRequest hook below) has our body and headers; Fastify's has not.
    return503OnClosing: false,
    // Slow or numerous clients cannot hold the server: the whole request must arrive within
    // the request timeout (checked every second or so, not Node's default 30 s).
    requestTimeout: deps.http.requestTimeoutMs,
    keepAliveTimeout: deps.http.keepAliveTimeoutMs,
    http: {
      requestTimeout: deps.http.requestTimeoutMs,
      headersTimeout: Math.min(deps.http.requestTimeoutMs, HEADERS_TIMEOUT_MS),
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(deps.http.requestTimeoutMs / 4))),
    },
    // What Node's parser rejects (431, a bad Content-Length, malformed HTTP, 408) gets our shape.
    clientErrorHandler: createClientErrorHandler(SECURITY_HEADERS),
    // The error handler words validation failures from the list; Fastify's own message would
    // join every one of possibly thousands of problems.
    schemaErrorFormatter: (errors, part) => new Error(`invalid ${part}: ${errors.length} problem(s)`),
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

  app.server.maxConnections = deps.http.maxConnections;
  // Connections over the limit are closed by Node as they arrive; say so, at most every 10 s.
  let dropped = 0;
  let droppedLoggedAt = -Infinity;
  app.server.on('drop', () => {
    dropped += 1;
    if (Date.now() - droppedLoggedAt < 10_000) return;
    app.log.warn({ dropped, maxConnections: deps.http.maxConnections }, 'connections refused: ALERTS_MAX_CONNECTIONS reached');
    dropped = 0;
    droppedLoggedAt = Date.now();
  });
  app.server.on('checkExpectation', answerUnmetExpectation(SECURITY_HEADERS));
  app.setValidatorCompiler(createValidatorCompiler());
  registerErrorHandling(app);

  // JSON is the only body type (anything else is 415). Replaces Fastify's parser so that a JSON content type with an empty body (common
  // on POST /rotate-secret) is "no body" rather than an error; bodies are parsed with
  // prototype-poisoning protection.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body as string;
    if (text.trim() === '') return done(null, undefined);
    // Parsing costs per value, not per byte: a body with more values than the route can
    // accept is refused before it is parsed (see json-budget.ts).
    const maxValues = request.routeOptions.config.maxJsonValues ?? DEFAULT_MAX_JSON_VALUES;
    if (exceedsJsonValueBudget(text, maxValues)) {
      const limit = maxValues.toLocaleString('en-US');
      return done(new AppError('validation', `request body holds more than ${limit} JSON values, more than this operation accepts`), undefined);
    }
    try {
      done(null, secureJson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' }));
    } catch (error) {
      done(Object.assign(new SyntaxError((error as Error).message), { statusCode: 400 }), undefined);
    }
  });

  // Set once shutdown starts; see the hooks below.
  let closing = false;
  // Connections that have not sent a request yet (a client's spare connection) are not idle to
  // Node, so a graceful close would wait for their client to give up: at close they go, and
  // any opened from then on too. One that has sent a request finishes it as before.
  const unused = new Set<Socket>();
  app.server.on('connection', (socket: Socket) => {
    if (closing) return void socket.destroy();
    unused.add(socket);
    socket.once('close', () => unused.delete(socket));
  });
  app.server.on('request', (request: IncomingMessage) => void unused.delete(request.socket));
  app.addHook('preClose', async () => {
    closing = true;
    // Only those that have not sent a byte: one that has sent part of a request gets its 503.
    for (const socket of unused) if (socket.bytesRead === 0) socket.destroy();
  });

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    if (!request.url.startsWith('/docs')) reply.headers(SECURITY_HEADERS);
    // A request arriving on an open connection during shutdown is turned away at once.
    if (closing) return reply.status(503).header('connection', 'close').send({ message: 'the service is shutting down; try again' });
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
          'Wire-compatible with the PolyAI Alerts API 1.0.0.\n\n' +
          deviationsMarkdown(),
      },
      // Relative: the paths are served by whichever host and port this document came from.
      servers: [{ url: '/', description: 'This service' }],
      components: { securitySchemes: { ApiKeyAuth: { type: 'apiKey', in: 'header', name: 'x-api-key' } } },
      security: [{ ApiKeyAuth: [] }],
      webhooks: {
        alertsTriggered: webhookOperation('alerts.triggered: a rule moved into the alert state.'),
        alertsResolved: webhookOperation('alerts.resolved: a firing rule moved back to ok.'),
      },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true });
  // The operator console: static files, outside /v1 (the page asks for the key; the API checks it).
  await app.register(consolePlugin);

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  app.get(
    '/healthz',
    {
      // Probes come every few seconds: a healthy one is not logged, a failing one is (warn and up).
      logLevel: 'warn',
      schema: {
        hide: true,
        response: { 200: Type.Object({ status: Type.String() }), 503: Type.Object({ status: Type.String(), message: Type.String() }) },
      },
    },
    async (request, reply) => {
      try {
        await deps.checkHealth();
        return { status: 'ok' };
      } catch (error) {
        request.log.error({ err: error }, 'health check failed');
        return reply.status(503).send({ status: 'unavailable', message: (error as Error).message });
      }
    },
  );

  registerOperationsRoutes(app, { notReady: deps.notReady, metrics: deps.metrics, isClosing: () => closing });

  await app.register(async (v1) => {
    requireApiKey(v1, deps.apiKeys);
    await v1.register(alertRuleRoutes, { rules: deps.rules });
    await v1.register(ruleHistoryRoutes, { history: deps.history });
    await v1.register(ruleSeriesRoutes, { series: deps.series });
    await v1.register(alertRoutes, { rules: deps.rules });
    await v1.register(webhookEndpointRoutes, { endpoints: deps.endpoints });
    await v1.register(telemetryRoutes, { telemetry: deps.telemetry, counters: deps.metrics.counters });
    await v1.register(streamRoutes, { stream: deps.stream });
    await v1.register(deliveryRoutes, { deliveries: deps.deliveries });
    await v1.register(silenceRoutes, { silences: deps.silences });
  });

  return app;
}
