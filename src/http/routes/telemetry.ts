import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { TelemetryService } from '../../domain/telemetry-service.js';
import { errorResponses, TelemetryAccepted, TelemetryBatch } from '../schemas.js';
import { fieldErrors } from '../validation.js';

/** A full batch of 10,000 events with long project ids fits comfortably. */
export const TELEMETRY_BODY_LIMIT_BYTES = 8 * 1024 * 1024;

export const telemetryRoutes: FastifyPluginAsyncTypebox<{ telemetry: TelemetryService }> = async (app, { telemetry }) => {
  app.post(
    '/v1/telemetry/events',
    {
      bodyLimit: TELEMETRY_BODY_LIMIT_BYTES,
      // A schema failure is answered by the handler, so that it can name the other bad
      // items of the batch as well (at most 100 problems listed).
      attachValidation: true,
      schema: {
        tags: ['Telemetry'],
        operationId: 'ingestTelemetryEvents',
        summary: 'Send telemetry events',
        description:
          'Records 1 to 10,000 call and turn events for the account. Answers 202 only once the batch is durably stored; ' +
          'rules of the scopes it touches are evaluated at once. A batch with any invalid item is rejected whole (400, each ' +
          'bad item named in errors) and nothing of it is stored. Not part of the PolyAI contract.',
        body: TelemetryBatch,
        response: { 202: TelemetryAccepted, ...errorResponses(400, 401, 413, 415, 500) },
      },
    },
    async (request, reply) => {
      if (request.validationError) {
        const { validation } = request.validationError;
        if (!validation) throw request.validationError;
        throw telemetry.rejectInvalid(request.body, fieldErrors(validation as Parameters<typeof fieldErrors>[0]));
      }
      return reply.status(202).send({ accepted: await telemetry.ingest(request.accountId, request.body.events) });
    },
  );
};
