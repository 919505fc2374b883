import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP, Socket, connect as netConnect } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { Agent, request, type buildConnector } from 'undici';
import type { AttemptResult, ErrorClass, WebhookClient, WebhookRequest } from '../domain/ports/webhook-client.js';
import type { AddressGuard } from './address-guard.js';

export type LookupFunction = typeof dnsLookup;

export class BlockedAddressError extends Error {
  readonly code = 'ALERTS_BLOCKED_ADDRESS';
}

/**
 * Added to every refusal of an address: which setting opens a range. Never the address a
 * name resolved to, nor a suggested range derived from it.
 */
export const ALLOWED_CIDRS_HINT = 'the service setting ALERTS_WEBHOOK_ALLOWED_CIDRS opens ranges for local receivers';
const refused = (reason: string) => new BlockedAddressError(`${reason}; ${ALLOWED_CIDRS_HINT}`);

const RESPONSE_BODY_LIMIT = 1024;

/** An attempt that reached its deadline, at any phase (DNS, TCP, TLS, request, response). */
export class AttemptTimeoutError extends Error {
  readonly code = 'ALERTS_ATTEMPT_TIMEOUT';
}

/** An attempt cut short from outside: its endpoint was deleted or disabled, or shutdown. */
export class AttemptAbortedError extends Error {
  readonly code = 'ALERTS_ATTEMPT_ABORTED';
}

// Addresses never leave in an attempt record or a /test answer: a tenant could otherwise map
// which internal names resolve where. IP-literal URLs are the tenant's own text, but a
// message cannot tell the two apart, so every address is replaced.
const IPV4_TEXT = /\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b/g;
const IPV6_TEXT = /\[?\b(?:[0-9a-f]{0,4}:){2,7}[0-9a-f.]{0,15}\b\]?(?::\d+)?/gi;
export const redactAddresses = (message: string): string => message.replace(IPV6_TEXT, '<address>').replace(IPV4_TEXT, '<address>');

function classify(error: unknown): { errorClass: ErrorClass; error: string } {
  const e = error as { code?: string; name?: string; message?: string; cause?: unknown };
  if (e instanceof BlockedAddressError || e?.code === 'ALERTS_BLOCKED_ADDRESS') return { errorClass: 'blocked_address', error: e.message ?? 'blocked' };
  const code = e?.code ?? '';
  const message = redactAddresses(e?.message ?? String(error));
  if (e instanceof AttemptAbortedError || code === 'ALERTS_ATTEMPT_ABORTED') return { errorClass: 'network', error: e.message ?? 'aborted' };
  if (e instanceof AttemptTimeoutError || e?.name === 'TimeoutError' || e?.name === 'AbortError' || /TIMEOUT/.test(code) || code === 'ETIMEDOUT') {
    return { errorClass: 'timeout', error: 'no complete response within the endpoint timeout' };
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NONAME' || code === 'ENODATA') return { errorClass: 'dns', error: 'the host name could not be resolved' };
  if (code === 'ECONNREFUSED') return { errorClass: 'connect_refused', error: 'connection refused' };
  if (/^ERR_TLS|^ERR_SSL|CERT|SELF_SIGNED|UNABLE_TO_VERIFY|HOSTNAME_MISMATCH|ERR_OSSL/.test(code) || /certificate|SSL|TLS/.test(message)) {
    return { errorClass: 'tls', error: message };
  }
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_SOCKET' || code === 'UND_ERR_CLOSED') return { errorClass: 'reset', error: 'connection reset by the receiver' };
  if (e?.cause && e.cause !== error) return classify(e.cause);
  return { errorClass: 'network', error: message };
}

/** Deadline of a connection (DNS, TCP, TLS) when no attempt told us its own: the longest endpoint timeout. */
const DEFAULT_CONNECT_DEADLINE_MS = 30_000;
/** Origins whose connect deadline is remembered; far above 10 endpoints x any real account count. */
const CONNECT_DEADLINES_KEPT = 10_000;

/**
 * What the client tells its connector about an origin (host and port): the deadline of the
 * latest attempt to it, and whether any attempt still waits for a connection. Keyed by the
 * URL's hostname (IPv6 in brackets) and port.
 */
export interface OriginRegistry {
  setDeadline(hostname: string, port: string, ms: number): void;
  deadline(hostname: string, port: string): number;
  /** A connection is being established; returns the function that ends the tracking. */
  connecting(hostname: string, port: string, destroy: () => void): () => void;
  /** No attempt waits for this origin any more: connections still being set up are destroyed. */
  abandon(hostname: string, port: string): void;
}

export function createOriginRegistry(defaultMs = DEFAULT_CONNECT_DEADLINE_MS): OriginRegistry {
  const deadlines = new Map<string, number>();
  const pending = new Map<string, Set<() => void>>();
  const key = (hostname: string, port: string) => `${hostname}|${port}`;
  return {
    setDeadline(hostname, port, ms) {
      const k = key(hostname, port);
      deadlines.delete(k);
      if (deadlines.size >= CONNECT_DEADLINES_KEPT) deadlines.delete(deadlines.keys().next().value!);
      deadlines.set(k, ms);
    },
    deadline: (hostname, port) => deadlines.get(key(hostname, port)) ?? defaultMs,
    connecting(hostname, port, destroy) {
      const k = key(hostname, port);
      let set = pending.get(k);
      if (!set) pending.set(k, (set = new Set()));
      set.add(destroy);
      return () => {
        set.delete(destroy);
        if (set.size === 0 && pending.get(k) === set) pending.delete(k);
      };
    },
    abandon(hostname, port) {
      const set = pending.get(key(hostname, port));
      if (set) for (const destroy of [...set]) destroy();
    },
  };
}

/**
 * A connector for undici that refuses forbidden addresses on the address actually used:
 * IP literals are checked before connecting, host names are resolved through a lookup that
 * drops forbidden answers, and the socket's remote address is checked again once TCP is
 * up, before the TLS handshake sends a single byte. Only HTTPS is spoken.
 *
 * Every connection has a deadline covering name resolution, TCP connect and the TLS
 * handshake: a receiver that accepts and then stays silent must not hold a pool connection
 * (and with it the attempts queued behind it) forever. undici gives a custom connector no
 * timeout of its own, so the deadline is enforced here and the sockets are destroyed.
 */
export function guardedConnector(
  guard: AddressGuard,
  lookup: LookupFunction = dnsLookup,
  origins: OriginRegistry = createOriginRegistry(),
): buildConnector.connector {
  const guardedLookup = ((hostname: string, options: object, callback: (err: Error | null, address: string | LookupAddress[], family?: number) => void) => {
    lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      const list = addresses as LookupAddress[];
      const allowed = list.filter((a) => guard.refusal(a.address) === undefined);
      if (allowed.length === 0) {
        // Which address, or what kind, is not said: a tenant could map internal names with it.
        return callback(refused(`${hostname} resolves only to addresses webhooks may not reach`), []);
      }
      if ((options as { all?: boolean }).all) return callback(null, allowed);
      callback(null, allowed[0]!.address, allowed[0]!.family);
    });
  }) as unknown as LookupFunction;

  return (options, callback) => {
    // Set up as the connection progresses; finish() tears down whatever exists by then.
    const state: { done: boolean; tcp?: Socket; tls?: TLSSocket; deadline?: NodeJS.Timeout; untrack?: () => void } = { done: false };
    const finish = (error: Error | null, socket?: Socket | TLSSocket) => {
      if (state.done) return;
      state.done = true;
      if (state.deadline) clearTimeout(state.deadline);
      state.untrack?.();
      if (error) {
        state.tls?.destroy();
        state.tcp?.destroy();
        callback(error, null);
      } else callback(null, socket!);
    };
    if (options.protocol !== 'https:') return finish(new BlockedAddressError('only https:// endpoints are allowed'));
    const host = options.hostname.replace(/^\[|\]$/g, '');
    const literal = isIP(host) !== 0;
    if (literal) {
      const refusal = guard.refusal(host);
      if (refusal) return finish(refused(refusal));
    }
    const port = String(options.port || 443);
    state.deadline = setTimeout(
      () => finish(new AttemptTimeoutError('connection not established within the endpoint timeout')),
      origins.deadline(options.hostname, port),
    );
    state.deadline.unref();
    state.untrack = origins.connecting(options.hostname, port, () => finish(new AttemptAbortedError('no attempt waits for this connection any more')));
    const tcp = netConnect({ host, port: Number(port), lookup: guardedLookup, noDelay: true });
    state.tcp = tcp;
    tcp.once('error', (error) => finish(error));
    tcp.once('connect', () => {
      if (state.done) return;
      const refusal = guard.refusal(tcp.remoteAddress ?? '');
      if (refusal) return finish(refused(literal ? refusal : `${host} connected to an address webhooks may not reach`));
      // `host` is what the certificate is checked against: without it Node checks an
      // IP-literal URL against "localhost". SNI is only sent for names, never for IPs.
      const tls = tlsConnect({
        socket: tcp,
        host,
        servername: literal ? undefined : (options.servername ?? host),
        ALPNProtocols: ['http/1.1'],
      });
      state.tls = tls;
      tls.once('error', (error) => finish(error));
      tls.once('secureConnect', () => finish(null, tls));
    });
  };
}

/** POSTs webhooks through the guarded connector; never follows redirects. */
export function createWebhookClient(options: { guard: AddressGuard; lookup?: LookupFunction; connectionsPerOrigin?: number }): WebhookClient {
  const origins = createOriginRegistry();
  /** Attempts not yet settled, per origin key: when the last one gives up, so do its connects. */
  const live = new Map<string, number>();
  const agent = new Agent({
    connect: guardedConnector(options.guard, options.lookup, origins),
    connections: options.connectionsPerOrigin ?? 16,
    keepAliveTimeout: 10_000,
  });

  async function exchange(req: WebhookRequest, signal: AbortSignal): Promise<Omit<AttemptResult, 'durationMs'>> {
    const response = await request(req.url, { method: 'POST', headers: req.headers, body: req.body, signal, dispatcher: agent });
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of response.body) {
        const buffer = chunk as Buffer;
        chunks.push(buffer.subarray(0, RESPONSE_BODY_LIMIT - size));
        size += Math.min(buffer.length, RESPONSE_BODY_LIMIT - size);
        if (size >= RESPONSE_BODY_LIMIT) break;
      }
    } finally {
      if (size >= RESPONSE_BODY_LIMIT || signal.aborted) response.body.destroy();
    }
    return { statusCode: response.statusCode, errorClass: null, error: null, responseBody: Buffer.concat(chunks).toString('utf8') };
  }

  return {
    async send(req, outerSignal) {
      const started = performance.now();
      const controller = new AbortController();
      const failure = (error: unknown): AttemptResult => ({
        ...classify(error),
        statusCode: null,
        responseBody: null,
        durationMs: performance.now() - started,
      });
      // The attempt ends at the deadline whatever undici is doing: a request still waiting
      // for a connection is not rejected by its signal (undici only aborts once connected),
      // so the race, not the signal, is what guarantees the end; the signal and the connect
      // deadline then tear the sockets down.
      const ended = new Promise<AttemptResult>((resolve) => {
        const end = () => resolve(failure(controller.signal.reason));
        controller.signal.addEventListener('abort', end, { once: true });
      });
      const timer = setTimeout(() => controller.abort(new AttemptTimeoutError('deadline')), req.timeoutMs);
      const onOuterAbort = () => controller.abort(new AttemptAbortedError('attempt aborted before it completed'));
      if (outerSignal?.aborted) onOuterAbort();
      else outerSignal?.addEventListener('abort', onOuterAbort, { once: true });
      let origin: { hostname: string; port: string; key: string } | undefined;
      try {
        const url = new URL(req.url);
        origin = { hostname: url.hostname, port: url.port || '443', key: `${url.hostname}|${url.port || '443'}` };
        origins.setDeadline(origin.hostname, origin.port, req.timeoutMs);
        live.set(origin.key, (live.get(origin.key) ?? 0) + 1);
        const work = exchange(req, controller.signal).then(
          (result): AttemptResult => ({ ...result, durationMs: performance.now() - started }),
          (error: unknown) => failure(controller.signal.aborted ? controller.signal.reason : error),
        );
        return await Promise.race([work, ended]);
      } catch (error) {
        return failure(error);
      } finally {
        clearTimeout(timer);
        outerSignal?.removeEventListener('abort', onOuterAbort);
        if (origin) {
          const left = (live.get(origin.key) ?? 1) - 1;
          if (left > 0) live.set(origin.key, left);
          else {
            live.delete(origin.key);
            // A handshake that only this attempt waited for would otherwise run to its deadline.
            if (controller.signal.aborted) origins.abandon(origin.hostname, origin.port);
          }
        }
      }
    },
    // By now every attempt has settled (the worker stopped, the HTTP server closed), but a
    // connection may still be stuck in a handshake; close() would wait for it.
    close: () => agent.destroy(),
  };
}
