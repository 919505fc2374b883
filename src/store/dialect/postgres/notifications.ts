import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { Channel, Notifications } from '../../../domain/ports/notifications.js';

const RECONNECT_MS = 500;

/**
 * Channels are per database, not per schema: each is suffixed with a digest of the schema the
 * connection works in (its search_path), so deployments in separate schemas of one database
 * (and the test suite's schemas) do not wake each other. Computed by the database itself, so
 * a NOTIFY sent inside any transaction names the same channel as the LISTEN.
 */
export const SCHEMA_SUFFIX_SQL = `left(md5(current_schema()), 12)`;

/**
 * LISTEN/NOTIFY on one dedicated connection (a pooled one would be handed to other queries).
 * The connection is opened again after any failure; until it is back `live` is false, and
 * each (re)connection runs the resync handlers: notifications sent meanwhile are gone.
 */
export function createPostgresNotifications(url: string, pool: pg.Pool, onError: (error: Error) => void): Notifications {
  const handlers = new Map<Channel, ((payload: string) => void)[]>();
  const resync: (() => void)[] = [];
  let client: pg.Client | undefined;
  let closed = false;
  let starting: Promise<void> | undefined;
  let live = false;
  let retry: NodeJS.Timeout | undefined;
  let queries: Promise<unknown> = Promise.resolve();
  let suffix = '';

  async function connect(): Promise<void> {
    const next = new pg.Client({ connectionString: url, application_name: 'alerts-listen', keepAlive: true });
    next.on('error', (error) => {
      onError(error);
      lost(next);
    });
    next.on('end', () => lost(next));
    next.on('notification', (message) => {
      const channel = message.channel.slice(0, message.channel.lastIndexOf('_')) as Channel;
      for (const handler of handlers.get(channel) ?? []) {
        try {
          handler(message.payload ?? '');
        } catch (error) {
          onError(error as Error);
        }
      }
    });
    await next.connect();
    suffix = (await next.query<{ suffix: string }>(`select ${SCHEMA_SUFFIX_SQL} as suffix`)).rows[0]!.suffix;
    for (const channel of handlers.keys()) await next.query(`listen ${channel}_${suffix}`);
    if (closed) {
      await next.end().catch(() => undefined);
      return;
    }
    client = next;
    live = true;
    for (const handler of resync) handler();
  }

  function lost(which: pg.Client): void {
    if (client !== which) return;
    client = undefined;
    live = false;
    which.end().catch(() => undefined);
    schedule();
  }

  function schedule(): void {
    if (closed || retry) return;
    retry = setTimeout(() => {
      retry = undefined;
      connect().catch((error: unknown) => {
        onError(error as Error);
        schedule();
      });
    }, RECONNECT_MS);
    retry.unref();
  }

  return {
    origin: randomUUID(),
    listen(channel, handler) {
      const list = handlers.get(channel);
      if (list) list.push(handler);
      else {
        handlers.set(channel, [handler]);
        // Registered after start: listen on the live connection too, one query at a time.
        const current = client;
        if (current) queries = queries.then(() => current.query(`listen ${channel}_${suffix}`)).catch((error: unknown) => onError(error as Error));
      }
    },
    async notify(channel, payload) {
      try {
        await pool.query(`select pg_notify($1 || '_' || ${SCHEMA_SUFFIX_SQL}, $2)`, [channel, payload]);
      } catch (error) {
        onError(error as Error);
      }
    },
    get live() {
      return live;
    },
    onResync(handler) {
      resync.push(handler);
    },
    start() {
      starting ??= connect().catch((error: unknown) => {
        onError(error as Error);
        schedule();
      });
      return starting;
    },
    async close() {
      closed = true;
      live = false;
      if (retry) clearTimeout(retry);
      await client?.end().catch(() => undefined);
      client = undefined;
    },
  };
}
