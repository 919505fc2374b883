/**
 * Several real `alerts serve` processes (the compiled CLI) on one database, for tests of the
 * service run as a cluster. Each instance is a child process on its own free loopback port,
 * started through startCliServer (ready once /healthz answers 200); every child is tracked by
 * cli-process.ts, so `killAllChildren()` in afterEach ends whatever a test left running,
 * paused ones included (SIGKILL works on a stopped process).
 *
 *   const cluster = await startCluster(3, { databaseUrl, cwd: dir, leaseTtl: '2s' });
 *   const res = await request(cluster[0]!, 'POST', '/v1/alert-rules', { ... });
 *   cluster[1]!.pause(); ... cluster[1]!.resume();
 *   await cluster[2]!.kill9();
 */
import { randomBytes } from 'node:crypto';
import { readClusterStatus, type ClusterStatus } from '../../src/store/cluster-status.js';
import { startCliServer, type CliServer } from './cli-process.js';
import { inspectDatabase, locationOf } from './database.js';
import { testTls } from './https-receiver.js';

export type Exit = { code: number | null; signal: NodeJS.Signals | null };

export interface InstanceOptions {
  /** DATABASE_URL shared by the instances (see databaseUrlFor / freshDatabaseUrl). */
  databaseUrl: string;
  /** The children's working directory (relative SQLite paths are read from it). */
  cwd: string;
  /** More environment, applied over the defaults below (HOST and PORT are always the harness's). */
  env?: Record<string, string>;
  /** ALERTS_BOOTSTRAP_API_KEY; a fresh random one when absent (startCluster shares one). */
  apiKey?: string;
  /** ALERTS_LEASE_TTL (duration text: "2s", "1500ms"); default "2s", so failover is quick. */
  leaseTtl?: string;
  /**
   * Let the children deliver webhooks to test/helpers/https-receiver.ts (default true):
   * NODE_EXTRA_CA_CERTS names the run's throwaway CA, and ALERTS_WEBHOOK_ALLOWED_CIDRS
   * opens 127.0.0.1/32 (loopback receivers are refused otherwise).
   */
  webhooks?: boolean;
}

export interface Instance {
  /** 0, 1, ... within its startCluster call (0 for startInstance). */
  readonly index: number;
  readonly port: number;
  readonly pid: number;
  /** http://127.0.0.1:port */
  readonly baseUrl: string;
  /** The bootstrap API key it was started with; request() sends it unless told otherwise. */
  readonly apiKey: string;
  /** The environment it was started with (without PATH/HOME, HOST and PORT). */
  readonly env: Readonly<Record<string, string>>;
  readonly child: CliServer['child'];
  /** Everything written so far. */
  stdout(): string;
  stderr(): string;
  /** stdout as lines (pino writes one JSON object a line). */
  lines(): string[];
  /** The lines of stdout that are JSON objects (log records), parsed. */
  logs(): Record<string, any>[];
  /** Resolves once stdout contains `text`; rejects if the process exits or time runs out first. */
  waitForStdout(text: string | RegExp, timeoutMs?: number): Promise<void>;
  /** Resolves with the first log record (already written or to come) that `match` accepts. */
  waitForLog(match: (record: Record<string, any>) => boolean, timeoutMs?: number): Promise<Record<string, any>>;
  /** Resolves when the process has exited. */
  readonly exited: Promise<Exit>;
  /** Whether it has exited. */
  hasExited(): boolean;
  /** SIGTERM (resuming it first if paused, or the signal would wait) and waits for the exit. */
  stop(): Promise<Exit>;
  /** SIGKILL and waits for the exit. */
  kill9(): Promise<Exit>;
  /** SIGSTOP: the process freezes (its timers, heartbeats and sockets with it) until resume(). */
  pause(): void;
  /** SIGCONT. */
  resume(): void;
  readonly paused: boolean;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A bootstrap API key the config accepts (32 to 256 printable characters). */
export function randomApiKey(): string {
  return 'bootstrap_' + randomBytes(24).toString('hex');
}

/** The environment an instance is started with (before HOST and PORT). */
export function instanceEnv(options: InstanceOptions, apiKey: string): Record<string, string> {
  return {
    DATABASE_URL: options.databaseUrl,
    ALERTS_BOOTSTRAP_API_KEY: apiKey,
    ALERTS_LEASE_TTL: options.leaseTtl ?? '2s',
    ...(options.webhooks === false ? {} : { NODE_EXTRA_CA_CERTS: testTls().caPath, ALERTS_WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32' }),
    ...options.env,
  };
}

function parseLogs(text: string): Record<string, any>[] {
  const records: Record<string, any>[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const value: unknown = JSON.parse(line);
      if (value !== null && typeof value === 'object' && !Array.isArray(value)) records.push(value as Record<string, any>);
    } catch {
      // a partial last line, or not JSON
    }
  }
  return records;
}

async function launch(options: InstanceOptions, apiKey: string, index: number): Promise<Instance> {
  const env = instanceEnv(options, apiKey);
  const server = await startCliServer({ cwd: options.cwd, env });
  let exited = false;
  let paused = false;
  void server.exited.then(
    () => (exited = true),
    () => (exited = true),
  );

  const instance: Instance = {
    index,
    port: server.port,
    pid: server.child.pid!,
    baseUrl: server.baseUrl,
    apiKey,
    env,
    child: server.child,
    stdout: server.stdout,
    stderr: server.stderr,
    lines: () => server.stdout().split('\n').filter((line) => line !== ''),
    logs: () => parseLogs(server.stdout()),
    waitForStdout: server.waitForStdout,
    async waitForLog(match, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = parseLogs(server.stdout()).find(match);
        if (found !== undefined) return found;
        if (exited) throw new Error(`instance ${index} (pid ${instance.pid}) exited before the log record awaited; stderr: ${server.stderr()}`);
        if (Date.now() > deadline) throw new Error(`instance ${index} (pid ${instance.pid}): timed out waiting for a log record`);
        await sleep(20);
      }
    },
    exited: server.exited,
    hasExited: () => exited,
    async stop() {
      if (!exited) {
        server.child.kill('SIGTERM');
        // A stopped process keeps the SIGTERM pending until it runs again.
        if (paused) instance.resume();
      }
      return server.exited;
    },
    async kill9() {
      if (!exited) server.child.kill('SIGKILL');
      paused = false;
      return server.exited;
    },
    pause() {
      if (exited) throw new Error(`instance ${index} (pid ${instance.pid}) has exited; it cannot be paused`);
      server.child.kill('SIGSTOP');
      paused = true;
    },
    resume() {
      if (!exited) server.child.kill('SIGCONT');
      paused = false;
    },
    get paused() {
      return paused;
    },
  };
  return instance;
}

/** Starts one `alerts serve` and resolves once its /healthz answers 200. */
export function startInstance(options: InstanceOptions & { index?: number }): Promise<Instance> {
  return launch(options, options.apiKey ?? randomApiKey(), options.index ?? 0);
}

/**
 * Starts `n` instances on one database, with one bootstrap API key, each on its own port.
 * One after the other by default (each ready before the next starts); `concurrently` starts
 * them all at once (start-up races, migrations under the lock).
 */
export async function startCluster(n: number, options: InstanceOptions & { concurrently?: boolean }): Promise<Instance[]> {
  const apiKey = options.apiKey ?? randomApiKey();
  if (options.concurrently === true) return Promise.all(Array.from({ length: n }, (_, index) => launch(options, apiKey, index)));
  const instances: Instance[] = [];
  for (let index = 0; index < n; index++) instances.push(await launch(options, apiKey, index));
  return instances;
}

/** SIGTERM to every instance still running, at once; resolves with their exits, in order. */
export function stopAll(instances: readonly Instance[]): Promise<Exit[]> {
  return Promise.all(instances.map((instance) => instance.stop()));
}

export interface Response {
  status: number;
  headers: Headers;
  /** The body parsed as JSON, or undefined when empty or not JSON. */
  body: any;
  text: string;
}

/**
 * `method path` on the instance (http://127.0.0.1:port), with its API key in x-api-key
 * unless `headers` sets one (or sets it to '' to send none); `body` is sent as JSON.
 */
export async function request(instance: Pick<Instance, 'baseUrl' | 'apiKey'>, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> {
  const sent: Record<string, string> = { 'x-api-key': instance.apiKey, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers };
  if (sent['x-api-key'] === '') delete sent['x-api-key'];
  const res = await fetch(instance.baseUrl + path, { method, headers: sent, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, body: parsed, text };
}

/** What `alerts cluster status --json` would print, read directly (own connection, closed after). */
export async function clusterStatus(databaseUrl: string): Promise<ClusterStatus> {
  const location = locationOf(databaseUrl);
  const db = inspectDatabase(databaseUrl);
  try {
    return await readClusterStatus({ db, adapter: location.kind, location: location.display });
  } finally {
    await db.destroy();
  }
}

/** Polls `read` until `done` accepts its value; throws with the last value after `timeoutMs`. */
export async function waitUntil<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 10_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms; last value: ${JSON.stringify(value)}`);
    await sleep(intervalMs);
  }
}
