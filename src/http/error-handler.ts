import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, clip, invalidRequest, MAX_LISTED_ERRORS, type FieldError } from '../domain/errors.js';
import { fieldErrors } from './validation.js';

const PART_NAMES: Record<string, string> = {
  body: 'request body',
  querystring: 'query string',
  params: 'path',
  headers: 'headers',
};

/** Turns any failure into the documented status and a `{message}` body; no stack leaves. */
export function toAppError(error: FastifyError | AppError | Error): AppError {
  if (error instanceof AppError) return error;
  const fe = error as FastifyError;

  if (fe.validation) {
    const { errors, total } = fieldErrors(fe.validation as Parameters<typeof fieldErrors>[0]);
    const part = fe.validationContext ?? 'body';
    if (part === 'params') return invalidRequest('malformedId', 'malformed ID in path', errors, total);
    return invalidRequest('validation', `invalid ${PART_NAMES[part] ?? part}`, errors, total);
  }

  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new AppError('payloadTooLarge', 'request body is larger than the limit');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new AppError('unsupportedMediaType', 'request body must be JSON (Content-Type: application/json)');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new AppError('validation', 'request body length does not match Content-Length');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new AppError('validation', 'request body is empty; a JSON object is required');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new AppError('validation', `malformed JSON in request body: ${fe.message}`);
  }
  if (error instanceof SyntaxError) return new AppError('validation', `malformed JSON in request body: ${error.message}`);
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    // A client error raised by Fastify itself (e.g. a bad header); keep its status and words.
    const mapped = new AppError('validation', fe.message);
    return Object.assign(mapped, { status: fe.statusCode });
  }
  return new AppError('internal', 'internal server error');
}

/** Longest message an error body carries, whatever produced it. */
export const MAX_MESSAGE_LENGTH = 1000;

/**
 * The body of an error answer, bounded whatever the error holds: the message and each listed
 * problem are cut to length, and at most 100 problems are listed.
 */
export function errorBody(error: AppError): { message: string; errors?: FieldError[] } {
  const body: { message: string; errors?: FieldError[] } = { message: clip(error.message, MAX_MESSAGE_LENGTH) };
  if (error.errors && error.errors.length > 0) {
    body.errors = error.errors.slice(0, MAX_LISTED_ERRORS).map((e) => ({ field: clip(e.field), message: clip(e.message) }));
  }
  return body;
}

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const appError = toAppError(error);
    const body = errorBody(appError);
    if (appError.status >= 500) request.log.error({ err: error }, 'request failed');
    else request.log.info({ status: appError.status, message: body.message }, 'request rejected');
    return reply.status(appError.status).send(body);
  });

  app.setNotFoundHandler((request, reply) => {
    return reply.status(404).send({ message: clip(`no route for ${request.method} ${request.url.split('?')[0]}`, MAX_MESSAGE_LENGTH) });
  });
}
