import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { MAX_EVENTS_PER_BATCH } from '../../domain/telemetry.js';
import { IDEMPOTENCY_KEY_PATTERN, invalidIdempotencyKey, type TelemetryService } from '../../domain/telemetry-service.js';
import { errorResponses, TelemetryAccepted, TelemetryBatch } from '../schemas.js';
import { fieldErrors } from '../validation.js';
import type { Metrics } from '../../metrics/metrics.js';

/** A full batch of 10,000 events with long project ids fits comfortably. */
export const TELEMETRY_BODY_LIMIT_BYTES = 8 * 1024 * 1024;

/**
 * A valid batch has at most 5 `{`, `[` or `,` per event (its `{`, the commas between its 4
 * fields, the comma before it) and 2 around them: a body with many more is invalid whatever
 * it holds, and is refused before it is parsed (8 MiB of `{},` would be 2.7 million objects).
 */
export const TELEMETRY_MAX_JSON_VALUES = MAX_EVENTS_PER_BATCH * 8;

const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 255,
      pattern: IDEMPOTENCY_KEY_PATTERN,
      description:
        'Optional, 1 to 255 printable ASCII characters, chosen by the sender for this batch (a UUID, say). The same batch sent ' +
        'again with the same key within 24 hours (a retry after a timeout) is answered 202 with the first answer ' +
        '(and `Idempotent-Replayed: true`) and is not counted again, across restarts too; the same key with a different ' +
        'batch is 409. Keys are per account.',
    }),
  ),
});

/** Where accepted batches and events are counted (GET /metrics). */
export type TelemetryCounters = Pick<Metrics, 'telemetryBatches' | 'telemetryEvents'>;

/** A batch's outcome by its answer: counted once per request, whatever refused it (auth, size, type, validation). */
function outcomeOf(status: number, replayed: boolean): string {
  if (status === 202) return replayed ? 'replayed' : 'accepted';
  return status >= 500 ? 'failed' : 'rejected';
}

export const telemetryRoutes: FastifyPluginAsyncTypebox<{ telemetry: TelemetryService; counters: TelemetryCounters }> = async (app, { telemetry, counters }) => {
  app.post(
    '/v1/telemetry/events',
    {
      bodyLimit: TELEMETRY_BODY_LIMIT_BYTES,
      config: { maxJsonValues: TELEMETRY_MAX_JSON_VALUES },
      // A schema failure is answered by the handler, so that it can name the other bad
      // items of the batch as well (at most 100 problems listed).
      attachValidation: true,
      onResponse: async (_request, reply) => {
        counters.telemetryBatches.inc({ outcome: outcomeOf(reply.statusCode, reply.getHeader('idempotent-replayed') === 'true') });
      },
      schema: {
        tags: ['Telemetry'],
        operationId: 'ingestTelemetryEvents',
        summary: 'Send telemetry events',
        description:
          'Records 1 to 10,000 call and turn events for the account. Answers 202 only once the batch is durably stored; ' +
          'rules of the scopes it touches are evaluated at once. A batch with any invalid item is rejected whole (400, each ' +
          'bad item named in errors) and nothing of it is stored. Send an `Idempotency-Key` header to retry safely: a batch ' +
          'repeated with the same key within 24 hours is not counted twice. Not part of the PolyAI contract.',
        headers: IdempotencyHeaders,
        body: TelemetryBatch,
        response: {
          202: TelemetryAccepted,
          ...errorResponses(400, 401, 413, 415, 500),
          409: { ...errorResponses(409)[409], description: 'The Idempotency-Key was used within 24 hours for a different batch.' },
        },
      },
    },
    async (request, reply) => {
      const key = request.headers['idempotency-key'];
      if (request.validationError) {
        const { validation } = request.validationError;
        if (!validation) throw request.validationError;
        // A bad Idempotency-Key (the body passed): the service words it.
        if (request.validationError.validationContext === 'headers') throw invalidIdempotencyKey();
        const { errors, total } = fieldErrors(validation as Parameters<typeof fieldErrors>[0]);
        throw telemetry.rejectInvalid(request.body, errors, total);
      }
      const result = await telemetry.ingest(request.accountId, request.body.events, key);
      if (result.replayed) reply.header('idempotent-replayed', 'true');
      else counters.telemetryEvents.inc(result.accepted);
      return reply.status(202).send({ accepted: result.accepted });
    },
  );
};
