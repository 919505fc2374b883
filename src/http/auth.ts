import type { FastifyInstance } from 'fastify';
import type { ApiKeysService } from '../domain/api-keys-service.js';
import { AppError } from '../domain/errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The account of the request's API key; set by the auth hook on every /v1 route. */
    accountId: string;
  }
}

/** Requires a live `x-api-key` on every route registered in `scope`. */
export function requireApiKey(scope: FastifyInstance, apiKeys: ApiKeysService): void {
  scope.decorateRequest('accountId', '');
  scope.addHook('onRequest', async (request) => {
    const header = request.headers['x-api-key'];
    const key = Array.isArray(header) ? header[0] : header;
    if (!key) throw new AppError('unauthorized', 'missing API key: send it in the x-api-key header');
    const accountId = await apiKeys.authenticate(key);
    if (!accountId) throw new AppError('unauthorized', 'invalid or revoked API key');
    request.accountId = accountId;
  });
}
