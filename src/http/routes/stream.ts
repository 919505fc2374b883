import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { AppError } from '../../domain/errors.js';
import type { StreamEvent, StreamService } from '../../domain/stream-service.js';
import { errorResponses } from '../schemas.js';

const OURS = ' Not part of the PolyAI contract.';
/** Live streams one account may hold open at once (each polls the database twice a second). */
export const MAX_STREAMS_PER_ACCOUNT = 20;
/** A comment line this often keeps proxies from closing an idle stream. */
const KEEP_ALIVE_MS = 15_000;

/** One Server-Sent Events message; JSON never holds a raw newline, so `data` is one line. */
function frame(event: StreamEvent, id: string): string {
  return `id: ${id}\nevent: ${event.event}\ndata: ${JSON.stringify(event.data)}\n\n`;
}

export const streamRoutes: FastifyPluginAsyncTypebox<{ stream: StreamService }> = async (app, { stream }) => {
  const open = new Map<string, number>();
  /** Ends every stream at shutdown: an open stream would otherwise hold the server open. */
  const enders = new Set<() => void>();
  (app as unknown as FastifyInstance).addHook('preClose', async () => {
    for (const end of [...enders]) end();
  });

  app.get(
    '/v1/stream',
    {
      schema: {
        tags: ['Live stream'],
        operationId: 'streamAccountChanges',
        summary: 'Stream changes of rules and deliveries (Server-Sent Events)',
        description:
          'A text/event-stream of the account: `rule` (a rule\'s current state and value: every rule at the start, then each ' +
          'change), `rule_removed`, `transition` (a history row, with `rule_id`), `attempt` (a webhook attempt with its ' +
          'endpoint, delivery and event) and `reset` (the Last-Event-ID could not be resumed from: reload). Every event has an ' +
          'id; reconnecting with it in `Last-Event-ID` sends every transition and attempt after it, then the rules as they are. ' +
          `Any instance serves any account. At most ${MAX_STREAMS_PER_ACCOUNT} streams per account at once (429).` +
          OURS,
        response: {
          200: { description: 'An event stream.', content: { 'text/event-stream': { schema: { type: 'string' } } } },
          ...errorResponses(401, 429, 500),
        },
      },
    },
    async (request, reply) => {
      const accountId = request.accountId;
      const count = open.get(accountId) ?? 0;
      if (count >= MAX_STREAMS_PER_ACCOUNT) {
        throw new AppError('tooManyRequests', `this account already has ${MAX_STREAMS_PER_ACCOUNT} live streams open; close one first`);
      }
      const header = request.headers['last-event-id'];
      const lastEventId = Array.isArray(header) ? header[0] : header;
      const chunks: string[] = [];
      let write = (text: string) => void chunks.push(text);
      const release = () => {
        const left = (open.get(accountId) ?? 1) - 1;
        if (left === 0) open.delete(accountId);
        else open.set(accountId, left);
      };
      // Counted before the first read, so that concurrent requests cannot pass the limit together.
      open.set(accountId, count + 1);
      let subscription: { close(): void };
      try {
        // Opened before the answer starts: a database that does not answer is a 503, not an empty stream.
        subscription = await stream.open(accountId, lastEventId, (event, id) => write(frame(event, id)));
      } catch (error) {
        release();
        throw error;
      }
      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, {
        ...(reply.getHeaders() as Record<string, string>),
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        // Proxies such as nginx would otherwise hold events back in their buffers.
        'x-accel-buffering': 'no',
        // The connection ends with the stream: at shutdown, a connection left open for reuse
        // after its stream ended would hold the server's close until its keep-alive timeout.
        connection: 'close',
      });
      // How long a client waits before reconnecting after the stream broke.
      raw.write('retry: 2000\n\n' + chunks.join(''));
      write = (text) => void raw.write(text);
      const keepAlive = setInterval(() => raw.write(': keep-alive\n\n'), KEEP_ALIVE_MS);
      let ended = false;
      const end = () => {
        if (ended) return;
        ended = true;
        subscription.close();
        clearInterval(keepAlive);
        enders.delete(end);
        release();
        // Once the last bytes are out the connection goes too: a client that stopped reading
        // without closing would otherwise hold the server's shutdown until it gave up.
        raw.end(() => raw.destroy());
      };
      enders.add(end);
      // The response's close, not the request's: a request without a body is complete (and
      // its 'close' emitted) as soon as it is read; the response closes with the connection.
      raw.on('close', end);
      raw.on('error', end);
    },
  );
};
