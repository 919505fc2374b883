import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { MAX_SILENCE_AHEAD_DAYS, MAX_SILENCES_PER_ACCOUNT, type SilenceView } from '../../domain/silences.js';
import type { SilencesService } from '../../domain/silences-service.js';
import { CreateSilenceBody, errorResponses, Silence, SilenceIdParams, SilencePage, SilenceQuery } from '../schemas.js';

const TAGS = ['Silences'];
const OURS = ' Not part of the PolyAI contract.';

/** The public fields of a silence (the account it belongs to is implied by the key). */
function publicSilence(silence: SilenceView): Omit<SilenceView, 'account_id'> {
  const { account_id: _account, ...rest } = silence;
  return rest;
}

export const silenceRoutes: FastifyPluginAsyncTypebox<{ silences: SilencesService }> = async (app, { silences }) => {
  app.post(
    '/v1/silences',
    {
      schema: {
        tags: TAGS,
        operationId: 'createSilence',
        summary: 'Create a silence',
        description:
          'While a silence applies (starts_at <= t < ends_at), the rules it matches are evaluated and change state as usual, ' +
          'their history records each transition (with `silence_id`) and their events are written, but no webhook is sent ' +
          'for them: nothing is replayed when it ends, and the next transition after it is sent as usual. Decided when the ' +
          'event is written, from the silences stored then, so it applies at once on every instance. ' +
          `At least one matcher (rule_id, project_id, metric); ends_at at most ${MAX_SILENCE_AHEAD_DAYS} days ahead. An ` +
          `account has at most ${MAX_SILENCES_PER_ACCOUNT} silences that have not ended (409 beyond).` +
          OURS,
        body: CreateSilenceBody,
        response: { 201: Silence, ...errorResponses(400, 401, 409, 413, 415, 500) },
      },
    },
    async (request, reply) => reply.status(201).send(publicSilence(await silences.create(request.accountId, request.body))),
  );

  app.get(
    '/v1/silences',
    {
      schema: {
        tags: TAGS,
        operationId: 'listSilences',
        summary: 'List silences',
        description:
          'The account’s silences, newest first, ended ones included (kept for ALERTS_HISTORY_RETENTION after they end). ' +
          'Pages through `next_cursor`; a `cursor` that is not a `next_cursor` is a 400.' +
          OURS,
        querystring: SilenceQuery,
        response: { 200: SilencePage, ...errorResponses(400, 401, 500) },
      },
    },
    async (request) => {
      const page = await silences.page(request.accountId, request.query);
      return { data: page.data.map(publicSilence), next_cursor: page.next_cursor };
    },
  );

  app.get(
    '/v1/silences/:silence_id',
    {
      schema: {
        tags: TAGS,
        operationId: 'getSilence',
        summary: 'Get a silence',
        description: 'A silence of the account, ended or not.' + OURS,
        params: SilenceIdParams,
        response: { 200: Silence, ...errorResponses(401, 404, 422, 500) },
      },
    },
    async (request) => publicSilence(await silences.get(request.accountId, request.params.silence_id)),
  );

  app.delete(
    '/v1/silences/:silence_id',
    {
      schema: {
        tags: TAGS,
        operationId: 'deleteSilence',
        summary: 'End a silence',
        description:
          'Ends the silence now: events written from then on are sent. It stays listed, with `ends_at` the time it was ' +
          'ended (one that had not started gets `starts_at` then too: it never applied). Ending an ended silence changes ' +
          'nothing (204).' +
          OURS,
        params: SilenceIdParams,
        response: { 204: Type.Null({ description: 'Ended.' }), ...errorResponses(401, 404, 422, 500) },
      },
    },
    async (request, reply) => {
      await silences.end(request.accountId, request.params.silence_id);
      return reply.status(204).send(null);
    },
  );
};
