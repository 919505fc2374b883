import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP, Socket, connect as netConnect } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { Agent, request, type buildConnector } from 'undici';
import type { AddressGuard } from './address-guard.js';

/** How an attempt ended, for the attempt record and the retry decision. */
export const ERROR_CLASSES = ['timeout', 'dns', 'connect_refused', 'tls', 'reset', 'blocked_address', 'network'] as const;
export type ErrorClass = (typeof ERROR_CLASSES)[number];

export interface AttemptResult {
  statusCode: number | null;
  errorClass: ErrorClass | null;
  /** Human-readable cause when the attempt failed without a status; never carries secrets. */
  error: string | null;
  /** First 1 KiB of the response body (decoded as UTF-8). */
  responseBody: string | null;
  durationMs: number;
}

export interface WebhookRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
}

export type LookupFunction = typeof dnsLookup;

export class BlockedAddressError extends Error {
  readonly code = 'ALERTS_BLOCKED_ADDRESS';
}

const RESPONSE_BODY_LIMIT = 1024;

function classify(error: unknown): { errorClass: ErrorClass; error: string } {
  const e = error as { code?: string; name?: string; message?: string; cause?: unknown };
  if (e instanceof BlockedAddressError || e?.code === 'ALERTS_BLOCKED_ADDRESS') return { errorClass: 'blocked_address', error: e.message ?? 'blocked' };
  const code = e?.code ?? '';
  const message = e?.message ?? String(error);
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError' || /TIMEOUT/.test(code) || code === 'ETIMEDOUT') {
    return { errorClass: 'timeout', error: 'no complete response within the endpoint timeout' };
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NONAME' || code === 'ENODATA') return { errorClass: 'dns', error: message };
  if (code === 'ECONNREFUSED') return { errorClass: 'connect_refused', error: message };
  if (/^ERR_TLS|^ERR_SSL|CERT|SELF_SIGNED|UNABLE_TO_VERIFY|HOSTNAME_MISMATCH|ERR_OSSL/.test(code) || /certificate|SSL|TLS/.test(message)) {
    return { errorClass: 'tls', error: message };
  }
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_SOCKET' || code === 'UND_ERR_CLOSED') return { errorClass: 'reset', error: message };
  if (e?.cause && e.cause !== error) return classify(e.cause);
  return { errorClass: 'network', error: message };
}

/**
 * A connector for undici that refuses forbidden addresses on the address actually used:
 * IP literals are checked before connecting, host names are resolved through a lookup that
 * drops forbidden answers, and the socket's remote address is checked again once TCP is
 * up, before the TLS handshake sends a single byte. Only HTTPS is spoken.
 */
export function guardedConnector(guard: AddressGuard, lookup: LookupFunction = dnsLookup): buildConnector.connector {
  const guardedLookup = ((hostname: string, options: object, callback: (err: Error | null, address: string | LookupAddress[], family?: number) => void) => {
    lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      const list = addresses as LookupAddress[];
      const allowed = list.filter((a) => guard.refusal(a.address) === undefined);
      if (allowed.length === 0) {
        const reason = list.length > 0 ? guard.refusal(list[0]!.address) : 'no address';
        return callback(new BlockedAddressError(`${hostname} resolves only to forbidden addresses (${reason})`), []);
      }
      if ((options as { all?: boolean }).all) return callback(null, allowed);
      callback(null, allowed[0]!.address, allowed[0]!.family);
    });
  }) as unknown as LookupFunction;

  return (options, callback) => {
    let done = false;
    const finish = (error: Error | null, socket?: Socket | TLSSocket) => {
      if (done) return;
      done = true;
      if (error) callback(error, null);
      else callback(null, socket!);
    };
    if (options.protocol !== 'https:') return finish(new BlockedAddressError('only https:// endpoints are allowed'));
    const host = options.hostname.replace(/^\[|\]$/g, '');
    if (isIP(host)) {
      const refusal = guard.refusal(host);
      if (refusal) return finish(new BlockedAddressError(refusal));
    }
    const tcp = netConnect({ host, port: Number(options.port) || 443, lookup: guardedLookup, noDelay: true });
    tcp.once('error', (error) => finish(error));
    tcp.once('connect', () => {
      const refusal = guard.refusal(tcp.remoteAddress ?? '');
      if (refusal) {
        tcp.destroy();
        return finish(new BlockedAddressError(refusal));
      }
      // `host` is what the certificate is checked against: without it Node checks an
      // IP-literal URL against "localhost". SNI is only sent for names, never for IPs.
      const tls = tlsConnect({
        socket: tcp,
        host,
        servername: isIP(host) ? undefined : (options.servername ?? host),
        ALPNProtocols: ['http/1.1'],
      });
      tls.once('error', (error) => finish(error));
      tls.once('secureConnect', () => finish(null, tls));
    });
  };
}

export interface WebhookClient {
  send(request: WebhookRequest, signal?: AbortSignal): Promise<AttemptResult>;
  close(): Promise<void>;
}

/** POSTs webhooks through the guarded connector; never follows redirects. */
export function createWebhookClient(options: { guard: AddressGuard; lookup?: LookupFunction; connectionsPerOrigin?: number }): WebhookClient {
  const agent = new Agent({
    connect: guardedConnector(options.guard, options.lookup),
    connections: options.connectionsPerOrigin ?? 16,
    keepAliveTimeout: 10_000,
  });

  return {
    async send(req, outerSignal) {
      const started = performance.now();
      const deadline = AbortSignal.timeout(req.timeoutMs);
      const signal = outerSignal ? AbortSignal.any([deadline, outerSignal]) : deadline;
      try {
        const response = await request(req.url, { method: 'POST', headers: req.headers, body: req.body, signal, dispatcher: agent });
        const chunks: Buffer[] = [];
        let size = 0;
        for await (const chunk of response.body) {
          const buffer = chunk as Buffer;
          chunks.push(buffer.subarray(0, RESPONSE_BODY_LIMIT - size));
          size += Math.min(buffer.length, RESPONSE_BODY_LIMIT - size);
          if (size >= RESPONSE_BODY_LIMIT) break;
        }
        if (size >= RESPONSE_BODY_LIMIT) response.body.destroy();
        return {
          statusCode: response.statusCode,
          errorClass: null,
          error: null,
          responseBody: Buffer.concat(chunks).toString('utf8'),
          durationMs: performance.now() - started,
        };
      } catch (error) {
        const { errorClass, error: message } = classify(outerSignal?.aborted && !deadline.aborted ? { name: 'AbortError' } : error);
        return { statusCode: null, errorClass, error: message, responseBody: null, durationMs: performance.now() - started };
      }
    },
    close: () => agent.close(),
  };
}
