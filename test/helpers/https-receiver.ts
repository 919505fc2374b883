import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { TEST_TLS_DIR_ENV } from '../global-setup.js';

/** One request as it reached the receiver. */
export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** Name/value pairs exactly as sent, to count repeated headers. */
  rawHeaders: string[];
  /** The body bytes exactly as received. */
  body: Buffer;
  /** Wall-clock time (Date.now()) when the whole body had arrived. */
  receivedAt: number;
}

/** What the receiver does with one request. */
export interface ProgrammedResponse {
  status?: number;
  body?: string;
  headers?: Record<string, string>;
  /** Wait this long before answering. */
  delayMs?: number;
  /** Never answer (the connection is only closed when the receiver closes). */
  hang?: boolean;
  /** Drop the connection instead of answering. */
  close?: boolean;
}

export type Responder = (request: ReceivedRequest, index: number) => ProgrammedResponse;

export interface HttpsReceiver {
  readonly host: string;
  readonly port: number;
  /** https://host:port/hook with IPv6 literals in brackets. */
  readonly url: string;
  /** `https://{name}:port/hook`, for receivers reached through a host name. */
  urlFor(name: string, path?: string): string;
  readonly requests: ReceivedRequest[];
  /** TCP connections accepted so far (a blocked sender must not even connect). */
  readonly connections: number;
  /** Answers the next requests in order; once used up, the default (or 200) applies. */
  enqueue(...responses: ProgrammedResponse[]): void;
  /** Decides every request not covered by enqueue(). */
  setDefault(response: ProgrammedResponse | Responder): void;
  /** Resolves with the requests once at least `count` have arrived. */
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedRequest[]>;
  close(): Promise<void>;
}

export interface TestTls {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
  caPath: string;
}

/** The throwaway CA and server certificate made by test/global-setup.ts. */
export function testTls(): TestTls {
  const dir = process.env[TEST_TLS_DIR_ENV];
  if (!dir) throw new Error(`${TEST_TLS_DIR_ENV} is not set: test/global-setup.ts did not run`);
  return {
    ca: readFileSync(join(dir, 'ca.crt')),
    cert: readFileSync(join(dir, 'server.crt')),
    key: readFileSync(join(dir, 'server.key')),
    caPath: join(dir, 'ca.crt'),
  };
}

const LOOPBACK = new Set(['127.0.0.1', '127.0.0.2', '::1']);

/**
 * A real HTTPS server on a loopback address (never anything else), with the test
 * certificate. Records every request and answers as programmed.
 */
export async function startHttpsReceiver(options: { host?: string; port?: number } = {}): Promise<HttpsReceiver> {
  const host = options.host ?? '127.0.0.1';
  if (!LOOPBACK.has(host)) throw new Error(`receivers listen on loopback only, not ${host}`);
  const tls = testTls();
  const requests: ReceivedRequest[] = [];
  const queue: ProgrammedResponse[] = [];
  let fallback: ProgrammedResponse | Responder = { status: 200 };
  const waiters = new Set<() => void>();
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let connections = 0;

  const server: Server = createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const received: ReceivedRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body: Buffer.concat(chunks),
        receivedAt: Date.now(),
      };
      const index = requests.length;
      requests.push(received);
      const programmed = queue.shift() ?? (typeof fallback === 'function' ? fallback(received, index) : fallback);
      for (const wake of [...waiters]) wake();
      const answer = () => {
        if (programmed.hang) return;
        if (programmed.close) {
          req.socket.destroy();
          return;
        }
        res.writeHead(programmed.status ?? 200, { 'content-type': 'text/plain', ...programmed.headers });
        res.end(programmed.body ?? '');
      };
      if (programmed.delayMs) {
        const timer = setTimeout(() => {
          timers.delete(timer);
          answer();
        }, programmed.delayMs);
        timers.add(timer);
      } else answer();
    });
  });
  server.on('connection', (socket: Socket) => {
    connections += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  // A client that gives up mid-handshake is not the receiver's problem.
  server.on('tlsClientError', () => {});

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: options.port ?? 0 }, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const hostInUrl = host.includes(':') ? `[${host}]` : host;

  return {
    host,
    port,
    url: `https://${hostInUrl}:${port}/hook`,
    urlFor: (name, path = '/hook') => `https://${name}:${port}${path}`,
    requests,
    get connections() {
      return connections;
    },
    enqueue: (...responses) => queue.push(...responses),
    setDefault: (response) => {
      fallback = response;
    },
    waitFor(count, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (requests.length < count) return;
          cleanup();
          resolve(requests.slice());
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`receiver ${host}:${port} got ${requests.length} of ${count} requests within ${timeoutMs} ms`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    async close() {
      for (const timer of timers) clearTimeout(timer);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

/** A loopback port with nothing listening on it (taken, then released). */
export async function closedPort(host = '127.0.0.1'): Promise<number> {
  const probe = createTcpServer();
  await new Promise<void>((resolve) => probe.listen({ host, port: 0 }, () => resolve()));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}
