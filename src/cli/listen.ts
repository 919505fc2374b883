import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { InvalidArgumentError, type Command } from 'commander';
import { DEFAULT_TOLERANCE_SECONDS, EVENT_ID_HEADER, verifyWebhook, type VerifyResult } from '../../packages/webhooks/src/index.js';
import { loadCliSettings, type CliSettings } from '../config.js';
import { certificateNames, defaultTlsDir, ensureThrowawayCert, serviceSettings, type ThrowawayCert } from './throwaway-cert.js';

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
  /**
   * Signing secrets, one per endpoint sending here: a webhook verifies when any of them
   * signed it. Read at each request, so a caller may add one later (the demo does).
   */
  secrets: readonly string[];
  /** PEM files; HTTPS when both are given. */
  cert?: string | undefined;
  key?: string | undefined;
  /** PEM contents (a throwaway certificate): HTTPS, instead of `cert`/`key` files. */
  tls?: { cert: Buffer; key: Buffer } | undefined;
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

/**
 * The line printed for one webhook. `secretNumber` (1-based) names the secret that verified
 * it, shown when there are several.
 */
export function webhookLine(time: Date, result: VerifyResult, headerEventId: string | string[] | undefined, secretNumber?: number): string {
  const at = time.toISOString();
  if (!result.ok) return `${at} REJECTED ${result.reason} event_id=${headerText(headerEventId)}`;
  const { event } = result;
  const { alert } = event;
  const value = alert.current_value === undefined ? '-' : String(alert.current_value);
  return (
    `${at} verified ${headerText(result.eventId)} ${event.event_type} rule=${quoted(alert.name)} ` +
    `current_value=${value} (${escapeUnsafe(String(alert.operator))} ${alert.threshold_value})${event.test === true ? ' [test]' : ''}` +
    (secretNumber === undefined ? '' : ` [secret ${secretNumber}]`)
  );
}

/**
 * Verifies with each secret: the first that verifies wins. Otherwise the answer of a secret
 * that did sign it (its timestamp or body is what is wrong), else of the first.
 */
export function verifyWithAny(
  body: Buffer | string,
  headers: IncomingMessage['headers'],
  secrets: readonly string[],
  options: { toleranceSeconds: number; now: () => number },
): { result: VerifyResult; index: number } {
  let fallback: { result: VerifyResult; index: number } | undefined;
  for (const [index, secret] of (secrets.length === 0 ? [''] : secrets).entries()) {
    const result = verifyWebhook(body, headers, secret, options);
    if (result.ok) return { result, index };
    if (fallback === undefined || (fallback.result.ok === false && fallback.result.reason === 'invalid_signature' && result.reason !== 'invalid_signature')) {
      fallback = { result, index };
    }
  }
  return fallback!;
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
  if (options.tls && options.cert !== undefined) throw new Error('--tls makes its own certificate: give either --tls or --cert/--key');
  const tls =
    options.tls ?? (options.cert !== undefined && options.key !== undefined ? { cert: readPem(options.cert, '--cert'), key: readPem(options.key, '--key') } : undefined);

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
        const { secrets } = options;
        const { result, index } = verifyWithAny(body, req.headers, secrets, { toleranceSeconds: options.toleranceSeconds, now: () => time.getTime() });
        out(webhookLine(time, result, req.headers[EVENT_ID_HEADER], secrets.length > 1 && result.ok ? index + 1 : undefined));
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

/** The host to put in a URL for a receiver bound to `address`: a wildcard address means this machine. */
export function reachableHost(address: string): string {
  const bare = address.replace(/^\[|\]$/g, '');
  if (bare === '' || bare === '0.0.0.0' || bare === '::' || bare === '0:0:0:0:0:0:0:0') return '127.0.0.1';
  return bare.includes(':') ? `[${bare}]` : bare;
}

/**
 * What a receiver with a throwaway certificate prints: the certificate, the exact settings the
 * service needs to deliver to it, and the URL to register.
 */
export function throwawayCertLines(cert: ThrowawayCert, url: string): string[] {
  const { hostname } = new URL(url);
  const settings = serviceSettings(cert.certPath, hostname);
  const names = cert.names.length > 1 ? `${cert.names.slice(0, -1).join(', ')} and ${cert.names.at(-1)}` : cert.names.join('');
  return [
    `TLS: throwaway self-signed certificate for ${names}, valid until ${cert.validTo.toISOString().slice(0, 10)} ` +
      `(${cert.created ? 'made now' : 'made earlier, reused'}): ${cert.certPath}`,
    ...(cert.replaced ? ['It replaces an earlier one: restart a service that trusted that one (NODE_EXTRA_CA_CERTS is read only at start).'] : []),
    'The service delivers here only when started with these settings (trust this certificate; allow this loopback address):',
    `  ${settings}`,
    `for example:  ${settings} npm start`,
    `Endpoint URL to register: ${url}`,
  ];
}

/** Runs the receiver until SIGINT/SIGTERM. */
export async function listenCommand(options: ListenOptions & { throwawayCert?: ThrowawayCert | undefined }, out: Out): Promise<void> {
  const listener = await startListener(options, out);
  if (options.throwawayCert) {
    const { hostname, port } = new URL(listener.url);
    for (const line of throwawayCertLines(options.throwawayCert, `https://${reachableHost(hostname)}:${port}/`)) out(line);
  }
  const secrets = options.secrets.length > 1 ? ` with any of ${options.secrets.length} secrets` : '';
  out(
    `listening on ${listener.url} (any path); verifying X-PolyAI-Signature${secrets}, timestamps within ${options.toleranceSeconds} s; ` +
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
The service only sends webhooks to https:// URLs with a certificate it trusts, and not to
loopback or private addresses unless allowed. --tls takes care of the certificate: it makes a
throwaway self-signed one (kept in ~/.cache/alerts/listen-tls and reused while valid) and prints
the two settings to start the service with, e.g.
  NODE_EXTRA_CA_CERTS=~/.cache/alerts/listen-tls/cert.pem ALERTS_WEBHOOK_ALLOWED_CIDRS=127.0.0.1/32 npm start
Without a signing secret, --tls only prints them and exits: create the endpoint
(https://127.0.0.1:9000/), then run again with its secret.

Secrets: ALERTS_WEBHOOK_SECRET (several: comma-separated) and --secret (repeatable), one per
endpoint sending here; a webhook verifies when any of them signed it. Prefer the environment:
command-line arguments are visible to other users of the machine (ps).

Plain HTTP (no --tls, --cert) is for sending yourself requests (curl, tests) or for a
tunnel/proxy that terminates TLS in front of it.

Examples:
  alerts listen --tls                                        # print the service's settings once
  ALERTS_WEBHOOK_SECRET=whsec_... alerts listen --tls        # https://127.0.0.1:9000/
  ALERTS_WEBHOOK_SECRET=whsec_a,whsec_b alerts listen --port 9000 --cert cert.pem --key key.pem`;

/** Adds `alerts listen` to the CLI. `settings` reads the environment (src/config.ts). */
export function registerListenCommand(program: Command, out: Out, fail: (error: unknown) => never, settings: () => CliSettings = loadCliSettings): void {
  program
    .command('listen')
    .description('run a local webhook receiver for development: verifies each webhook, prints one line per webhook, answers 200 or 400')
    .option('--port <port>', 'port to listen on (0 picks a free one)', integer(0, 65_535), LISTEN_DEFAULTS.port)
    .option('--host <address>', 'interface to listen on', LISTEN_DEFAULTS.host)
    .option(
      '--secret <secret>',
      "an endpoint's signing secret (whsec_...); repeatable, and added to ALERTS_WEBHOOK_SECRET's (comma-separated)",
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .option('--tls', 'HTTPS with a throwaway self-signed certificate; prints the settings the service needs to trust it', false)
    .option('--tls-dir <dir>', 'where --tls keeps its certificate (implies --tls)', undefined)
    .option('--cert <file>', 'PEM certificate (chain): listen with HTTPS; needs --key')
    .option('--key <file>', 'PEM private key of --cert')
    .option('--tolerance <seconds>', 'largest accepted distance of X-PolyAI-Timestamp from this clock', integer(0, 86_400), LISTEN_DEFAULTS.toleranceSeconds)
    .option('--print-body', 'also print each verified event as JSON', false)
    .addHelpText('after', HELP_AFTER)
    .action(
      (options: {
        port: number;
        host: string;
        secret: string[];
        tls: boolean;
        tlsDir?: string;
        cert?: string;
        key?: string;
        tolerance: number;
        printBody: boolean;
      }) => {
        let env: CliSettings;
        try {
          env = settings();
        } catch (error) {
          fail(error);
        }
        if (options.secret.some((secret) => secret.trim() === '')) fail(new Error('--secret must not be empty'));
        // Numbered in this order in the printed lines: the environment's first, then each --secret.
        const secrets = [...new Set([...env.webhookSecrets, ...options.secret.map((secret) => secret.trim())])];
        const tls = options.tls || options.tlsDir !== undefined;
        if (tls && (options.cert !== undefined || options.key !== undefined)) fail(new Error('--tls makes its own certificate: give either --tls or --cert/--key'));
        let cert: ThrowawayCert | undefined;
        if (tls) {
          try {
            cert = ensureThrowawayCert(options.tlsDir ?? defaultTlsDir(), certificateNames(options.host));
          } catch (error) {
            fail(error);
          }
        }
        if (secrets.length === 0) {
          if (!cert) {
            fail(new Error("no signing secret: give the endpoint's secret with ALERTS_WEBHOOK_SECRET=whsec_... (several: comma-separated) or --secret (repeatable)"));
          }
          const port = options.port === 0 ? '<port>' : String(options.port);
          for (const line of throwawayCertLines(cert, `https://${reachableHost(options.host)}:${port}/`)) out(line);
          out('');
          out('No signing secret given, so not listening yet. Start the service as above, create the webhook endpoint');
          out(`(its answer carries "signing_secret"), then run: ALERTS_WEBHOOK_SECRET=whsec_... alerts listen --tls${portFlag(options.port)}`);
          out('That run uses this same certificate.');
          return;
        }
        return listenCommand(
          {
            port: options.port,
            host: options.host,
            secrets,
            cert: options.cert,
            key: options.key,
            tls: cert && { cert: cert.cert, key: cert.key },
            throwawayCert: cert,
            toleranceSeconds: options.tolerance,
            printBody: options.printBody,
          },
          out,
        ).catch(fail);
      },
    );
}

const portFlag = (port: number) => (port === LISTEN_DEFAULTS.port ? '' : ` --port ${port}`);
