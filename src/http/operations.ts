import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { Metrics } from '../metrics/metrics.js';

/**
 * What operators and load balancers read, outside the API's auth: `/readyz` (send traffic
 * here?) and `/metrics` (Prometheus). `/healthz` (alive?) is in app.ts.
 */
export interface OperationsDeps {
  /** Why this instance should not get traffic; empty when it should. */
  notReady: () => Promise<string[]>;
  isClosing: () => boolean;
  metrics: { registry: Metrics['registry']; token: string | undefined };
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function registerOperationsRoutes(app: FastifyInstance, deps: OperationsDeps): void {
  app.get(
    '/readyz',
    {
      logLevel: 'warn',
      schema: {
        hide: true,
        response: {
          200: Type.Object({ status: Type.Literal('ready') }),
          503: Type.Object({ status: Type.Literal('not_ready'), message: Type.String(), reasons: Type.Array(Type.String()) }),
        },
      },
    },
    async (_request, reply) => {
      const reasons = deps.isClosing() ? ['the service is shutting down'] : await deps.notReady();
      if (reasons.length === 0) return { status: 'ready' as const };
      return reply.status(503).send({ status: 'not_ready' as const, message: reasons.join('; '), reasons });
    },
  );

  app.get('/metrics', { logLevel: 'warn', schema: { hide: true } }, async (request, reply) => {
    const token = deps.metrics.token;
    if (token !== undefined) {
      const header = request.headers.authorization ?? '';
      const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
      if (!match || !sameSecret(match[1]!, token)) {
        return reply
          .status(401)
          .header('www-authenticate', 'Bearer realm="metrics"')
          .send({ message: header === '' ? 'missing bearer token: send ALERTS_METRICS_TOKEN as Authorization: Bearer <token>' : 'invalid bearer token' });
      }
    }
    const text = await deps.metrics.registry.metrics();
    return reply.header('content-type', deps.metrics.registry.contentType).send(text);
  });
}
