/**
 * What every bench shares: the one percentile definition, table and number formatting,
 * verdicts, and the databases a bench runs on (a fresh SQLite file and, when PostgreSQL is
 * at hand, a fresh PostgreSQL schema per run, dropped afterwards).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import pg from 'pg';
import { pino } from 'pino';
import secureJson from 'secure-json-parse';
import { parseDatabaseUrl } from '../src/config.js';
import { createLogger } from '../src/logger.js';

// ---------------------------------------------------------------- numbers and tables

/**
 * The value at rank floor(q * (n - 1)) of `sorted` (ascending), q in [0, 1]: the lower
 * nearest rank, the definition src/engine/latency-histogram.ts reports. NaN when empty.
 */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.floor(Math.min(1, Math.max(0, q)) * (sorted.length - 1))]!;
}

/** A plain-text table, columns padded to their widest cell. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (c ?? '').padEnd(widths[i]!)).join(' | ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('-|-'), ...rows.map(line)].join('\n');
}

/** 12,345 or 12,345.6: thousands separated, `digits` decimals. */
export const fmtNumber = (n: number, digits = 0) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** Milliseconds: two decimals below 10, one above; '-' for NaN. */
export const fmtMs = (ms: number) => (Number.isNaN(ms) ? '-' : ms < 10 ? ms.toFixed(2) : ms.toFixed(1));

/** `a` as a percentage of `b`. */
export const percentOf = (a: number, b: number) => (b > 0 ? `${((a / b) * 100).toFixed(0)}%` : '-');

export const verdict = (met: boolean) => (met ? 'met' : 'NOT met');

// ---------------------------------------------------------------- databases

export type DatabaseKind = 'sqlite' | 'postgres';

export const DATABASE_LABEL: Record<DatabaseKind, string> = { sqlite: 'SQLite', postgres: 'PostgreSQL' };

const DEFAULT_POSTGRES_URL = 'postgres://postgres@127.0.0.1:5432/test';

export interface BenchDatabases {
  /** SQLite always; PostgreSQL when reachable. */
  kinds: DatabaseKind[];
  /** The PostgreSQL server's URL, when `kinds` holds it. */
  postgresUrl?: string;
  /** One line for the output: which databases, how durable, or why PostgreSQL was skipped. */
  note: string;
}

/** A URL's display form, without its password. */
const displayOf = (url: string) => parseDatabaseUrl(url, process.cwd()).display;

/**
 * Which databases this run measures. SQLite always. PostgreSQL at BENCH_POSTGRES_URL, else at
 * DATABASE_URL when that is a postgres:// URL (either must be reachable, or the bench fails),
 * else at postgres://postgres@127.0.0.1:5432/test if it answers (if not, the PostgreSQL
 * column is skipped and the note says why).
 */
export async function benchDatabases(): Promise<BenchDatabases> {
  const fromEnv = process.env.BENCH_POSTGRES_URL?.trim() || (/^postgres(ql)?:\/\//i.test(process.env.DATABASE_URL ?? '') ? process.env.DATABASE_URL!.trim() : undefined);
  const url = fromEnv ?? DEFAULT_POSTGRES_URL;
  const sqliteNote = 'SQLite: a fresh file in a temporary directory per run (WAL, synchronous=FULL)';
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    const settings = await client.query<{ name: string; setting: string }>(
      `select name, setting from pg_settings where name in ('server_version', 'synchronous_commit', 'fsync', 'commit_delay', 'shared_buffers') order by name`,
    );
    const s = Object.fromEntries(settings.rows.map((r) => [r.name, r.setting]));
    return {
      kinds: ['sqlite', 'postgres'],
      postgresUrl: url,
      note:
        `${sqliteNote}; PostgreSQL ${s.server_version} at ${displayOf(url)}: a fresh schema per run, dropped after ` +
        `(fsync=${s.fsync}, synchronous_commit=${s.synchronous_commit}, commit_delay=${s.commit_delay})`,
    };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    if (fromEnv) throw new Error(`PostgreSQL at ${displayOf(url)} (from ${process.env.BENCH_POSTGRES_URL ? 'BENCH_POSTGRES_URL' : 'DATABASE_URL'}) is unreachable: ${reason}`);
    return {
      kinds: ['sqlite'],
      note:
        `${sqliteNote}. PostgreSQL column SKIPPED: no BENCH_POSTGRES_URL or postgres:// DATABASE_URL set, and the default ` +
        `${displayOf(url)} is unreachable (${reason})`,
    };
  } finally {
    await client.end().catch(() => undefined);
  }
}

export interface FreshDatabase {
  kind: DatabaseKind;
  label: string;
  /** The DATABASE_URL of this database: a file path, or the server's URL with search_path set to the schema. */
  url: string;
  /** Removes the file or drops the schema; safe to call twice. */
  drop(): Promise<void>;
}

/** Databases not dropped yet: dropped on SIGINT/SIGTERM of this process too. */
const live = new Set<FreshDatabase>();
let signalsHandled = false;
function dropOnSignals(): void {
  if (signalsHandled) return;
  signalsHandled = true;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      void Promise.allSettled([...live].map((db) => db.drop())).finally(() => process.exit(130));
    });
  }
}

async function onServer<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** An empty database of `kind`: a new temporary SQLite file, or a new `bench_<random>` schema. */
export async function freshDatabase(kind: DatabaseKind, databases: BenchDatabases): Promise<FreshDatabase> {
  dropOnSignals();
  let db: FreshDatabase;
  if (kind === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'alerts-bench-db-'));
    db = {
      kind,
      label: DATABASE_LABEL[kind],
      url: join(dir, 'bench.db'),
      drop: async () => {
        live.delete(db);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } else {
    const server = databases.postgresUrl;
    if (!server) throw new Error('PostgreSQL is not among this run’s databases');
    const schema = `bench_${randomBytes(6).toString('hex')}`;
    await onServer(server, (c) => c.query(`create schema "${schema}"`));
    const url = new URL(server);
    // Options already in the URL (e.g. -c log_min_duration_statement=0) are kept.
    const options = url.searchParams.get('options');
    url.searchParams.set('options', `${options ? `${options} ` : ''}-c search_path=${schema}`);
    let dropped = false;
    db = {
      kind,
      label: DATABASE_LABEL[kind],
      url: url.toString(),
      drop: async () => {
        live.delete(db);
        if (dropped) return;
        dropped = true;
        await onServer(server, (c) => c.query(`drop schema if exists "${schema}" cascade`));
      },
    };
  }
  live.add(db);
  return db;
}

/** Runs `fn` on a fresh database of `kind` and drops it afterwards, also when `fn` fails. */
export async function withFreshDatabase<T>(kind: DatabaseKind, databases: BenchDatabases, fn: (db: FreshDatabase) => Promise<T>): Promise<T> {
  const db = await freshDatabase(kind, databases);
  try {
    return await fn(db);
  } finally {
    await db.drop();
  }
}

// ---------------------------------------------------------------- the bare telemetry route

/**
 * A child process's bare baseline for telemetry: the same framework, logger and JSON parser as
 * the service, `POST /v1/telemetry/events` answering 202 with the count and storing nothing.
 * Prints `{"port": n, ...extra}` on stdout once listening; SIGTERM closes it.
 */
export async function serveBareTelemetry(extra: Record<string, unknown> = {}): Promise<void> {
  const logger = createLogger('info', pino.destination({ dest: '/dev/null', sync: false }));
  const app = Fastify({ loggerInstance: logger as never, bodyLimit: 8 * 1024 * 1024 });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, secureJson.parse(body as string, undefined, { protoAction: 'error', constructorAction: 'error' }));
    } catch (error) {
      done(error as Error, undefined);
    }
  });
  app.post('/v1/telemetry/events', (request, reply) => reply.status(202).send({ accepted: (request.body as { events: unknown[] }).events.length }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  process.on('SIGTERM', () => void app.close().finally(() => process.exit(0)));
  process.stdout.write(JSON.stringify({ port: address.port, ...extra }) + '\n');
}
