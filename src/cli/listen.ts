import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { DEFAULT_TOLERANCE_SECONDS, EVENT_ID_HEADER, verifyWebhook, type VerifyResult } from '../../packages/webhooks/src/index.js';

/**
 * `alerts listen`: a local webhook receiver for development. Verifies each request with the
 * receivers' package (packages/webhooks), prints one line per webhook, and answers 200 when
 * it verifies, 400 when it does not.
 */

export const LISTEN_DEFAULTS = { port: 9000, host: '127.0.0.1', toleranceSeconds: DEFAULT_TOLERANCE_SECONDS } as const;
/** Same limit as the service's own request bodies. */
const MAX_BODY_BYTES = 1024 * 1024;

export interface ListenOptions {
  port: number;
  host: string;
  secret: string;
  /** PEM files; HTTPS when both are given. */
  cert?: string | undefined;
  key?: string | undefined;
  toleranceSeconds: number;
  /** Also print the verified body, pretty, after its line. */
  printBody: boolean;
}

export interface Listener {
  server: Server;
  url: string;
  close(): Promise<void>;
}

type Out = (line: string) => void;

// Control characters (C0, DEL, C1) and bidi/line separators: never written raw to a terminal.
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const escapeUnsafe = (text: string) => text.replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
/** A quoted, escaped string: safe to print whatever the sender put in it. */
const quoted = (text: string) => escapeUnsafe(JSON.stringify(text));
/** An unverified header value: printable, short. */
const headerText = (value: string | string[] | undefined) => {
  const text = Array.isArray(value) ? value.join(', ') : value;
  if (text === undefined || text === '') return '-';
  const safe = escapeUnsafe(text).replace(/\s/g, '_');
  return safe.length > 80 ? `${safe.slice(0, 80)}…` : safe;
};

/** The line printed for one webhook. */
export function webhookLine(time: Date, result: VerifyResult, headerEventId: string | string[] | undefined): string {
  const at = time.toISOString();
  if (!result.ok) return `${at} REJECTED ${result.reason} event_id=${headerText(headerEventId)}`;
  const { event } = result;
  const { alert } = event;
  const value = alert.current_value === undefined ? '-' : String(alert.current_value);
  return (
    `${at} verified ${headerText(result.eventId)} ${event.event_type} rule=${quoted(alert.name)} ` +
    `current_value=${value} (${escapeUnsafe(String(alert.operator))} ${alert.threshold_value})${event.test === true ? ' [test]' : ''}`
  );
}

function send(res: ServerResponse, status: number, body: Record<string, unknown>, extra: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...extra });
  res.end(text);
}

function readBody(req: IncomingMessage): Promise<Buffer | 'too_large'> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(tooLarge ? 'too_large' : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Starts the receiver; resolves once it listens. */
export async function startListener(options: ListenOptions, out: Out, now: () => Date = () => new Date()): Promise<Listener> {
  if ((options.cert === undefined) !== (options.key === undefined)) throw new Error('--cert and --key go together: give both for HTTPS, or neither for HTTP');
  const tls = options.cert !== undefined && options.key !== undefined ? { cert: readPem(options.cert, '--cert'), key: readPem(options.key, '--key') } : undefined;

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== 'POST') {
      send(res, 405, { ok: false, reason: 'method_not_allowed', message: 'webhooks are POST requests' }, { allow: 'POST' });
      return;
    }
    readBody(req).then(
      (body) => {
        const time = now();
        if (body === 'too_large') {
          out(`${time.toISOString()} REJECTED body_too_large event_id=${headerText(req.headers[EVENT_ID_HEADER])}`);
          send(res, 413, { ok: false, reason: 'body_too_large' }, { connection: 'close' });
          return;
        }
        const result = verifyWebhook(body, req.headers, options.secret, { toleranceSeconds: options.toleranceSeconds, now: () => time.getTime() });
        out(webhookLine(time, result, req.headers[EVENT_ID_HEADER]));
        if (result.ok) {
          if (options.printBody) out(JSON.stringify(result.event, null, 2).split('\n').map(escapeUnsafe).join('\n'));
          send(res, 200, { ok: true, event_id: result.eventId });
        } else {
          send(res, 400, { ok: false, reason: result.reason });
        }
      },
      () => res.destroy(), // the client went away mid-body
    );
  };

  const server: Server = tls ? createHttpsServer(tls, handle) : createHttpServer(handle);
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { address, port } = server.address() as AddressInfo;
  const url = `${tls ? 'https' : 'http'}://${address.includes(':') ? `[${address}]` : address}:${port}/`;
  return {
    server,
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function readPem(path: string, flag: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new Error(`${flag}: cannot read ${path}${code ? ` (${code})` : ''}`);
  }
}

/** Runs the receiver until SIGINT/SIGTERM. */
export async function listenCommand(options: ListenOptions, out: Out): Promise<void> {
  const listener = await startListener(options, out);
  out(
    `listening on ${listener.url} (any path); verifying X-PolyAI-Signature, timestamps within ${options.toleranceSeconds} s; ` +
      '200 when verified, 400 when not. Ctrl-C to stop.',
  );
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void listener.close().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

function integer(min: number, max: number) {
  return (value: string) => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || n < min || n > max) throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    return n;
  };
}

const HELP_AFTER = `
The service only sends webhooks to https:// URLs and checks certificates. To receive from it
directly, listen with HTTPS (--cert/--key) using a certificate the service trusts: start the
service with NODE_EXTRA_CA_CERTS=<your CA file>, and, for a loopback receiver, allow its address
with ALERTS_WEBHOOK_ALLOWED_CIDRS=127.0.0.1/32. Plain HTTP is for sending yourself requests (curl,
tests) or for a tunnel/proxy that terminates TLS in front of it.

Prefer ALERTS_WEBHOOK_SECRET over --secret: command-line arguments are visible to other users
of the machine (ps).

Example:
  ALERTS_WEBHOOK_SECRET=whsec_... alerts listen --port 9000 --cert cert.pem --key key.pem`;

/** Adds `alerts listen` to the CLI. */
export function registerListenCommand(program: Command, out: Out, fail: (error: unknown) => never): void {
  program
    .command('listen')
    .description('run a local webhook receiver for development: verifies each webhook, prints one line per webhook, answers 200 or 400')
    .option('--port <port>', 'port to listen on (0 picks a free one)', integer(0, 65_535), LISTEN_DEFAULTS.port)
    .option('--host <address>', 'interface to listen on', LISTEN_DEFAULTS.host)
    .addOption(new Option('--secret <secret>', "the endpoint's signing secret (whsec_...)").env('ALERTS_WEBHOOK_SECRET').makeOptionMandatory())
    .option('--cert <file>', 'PEM certificate (chain): listen with HTTPS; needs --key')
    .option('--key <file>', 'PEM private key of --cert')
    .option('--tolerance <seconds>', 'largest accepted distance of X-PolyAI-Timestamp from this clock', integer(0, 86_400), LISTEN_DEFAULTS.toleranceSeconds)
    .option('--print-body', 'also print each verified event as JSON', false)
    .addHelpText('after', HELP_AFTER)
    .action(
      (options: { port: number; host: string; secret: string; cert?: string; key?: string; tolerance: number; printBody: boolean }) => {
        if (options.secret === '') fail(new Error('--secret (or ALERTS_WEBHOOK_SECRET) must not be empty'));
        return listenCommand(
          {
            port: options.port,
            host: options.host,
            secret: options.secret,
            cert: options.cert,
            key: options.key,
            toleranceSeconds: options.tolerance,
            printBody: options.printBody,
          },
          out,
        ).catch(fail);
      },
    );
}
