/**
 * `npm run bench:api`: our API on SQLite and on PostgreSQL against a bare Fastify route
 * answering a constant of the same size, side by side in one run. The servers run in child
 * processes (one core), autocannon in this process (the other core), all on loopback. Each
 * database is fresh (a temporary SQLite file, a new PostgreSQL schema) and removed at the end;
 * see bench/helpers.ts for which PostgreSQL is used (BENCH_POSTGRES_URL, DATABASE_URL).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import autocannon, { type Options, type Result } from 'autocannon';
import { benchDatabases, freshDatabase, percentOf, table, verdict, type FreshDatabase } from './helpers.js';

const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 8);
const CONNECTIONS = 10;
const FIXED_RATE = 1000;
/** Targets: reads at least this share of the bare route's throughput, p99 below this at FIXED_RATE. */
const READ_SHARE_TARGET = 0.5;
const FIXED_P99_TARGET_MS = 10;

interface ChildInfo {
  port: number;
  readerKey: string;
  writerKey: string;
  ruleId: string;
  rule: Record<string, unknown>;
}

interface Child {
  proc: ChildProcess;
  info: ChildInfo;
}

async function startChild(args: string[]): Promise<Child> {
  const proc = spawn(process.execPath, [fileURLToPath(new URL('./api-server.js', import.meta.url)), ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = once(proc, 'exit').then(([code, signal]) => Promise.reject(new Error(`api-server ${args[0]} exited (${code ?? signal}) before reporting its port`)));
  const [line] = (await Promise.race([once(createInterface({ input: proc.stdout! }), 'line'), exited])) as [string];
  exited.catch(() => undefined);
  return { proc, info: JSON.parse(line) };
}

async function stopChild(child: Child): Promise<void> {
  if (child.proc.exitCode !== null || child.proc.signalCode !== null) return;
  const exited = once(child.proc, 'exit');
  child.proc.kill('SIGTERM');
  await exited;
}

function run(options: Options): Promise<Result> {
  return new Promise((resolve, reject) => {
    autocannon({ connections: CONNECTIONS, duration: DURATION_S, ...options }, (err, result) => (err ? reject(err) : resolve(result)));
  });
}

interface Measured {
  rps: number;
  p50: number;
  p99: number;
  fixedP50: number;
  fixedP99: number;
  fixedRps: number;
  failures: number;
}

/** `reset` runs after each run: a run that stops mid-cycle leaves a created rule behind. */
async function measure(options: Options, reset: () => Promise<void> = async () => {}): Promise<Measured> {
  await run({ ...options, duration: 2 }); // warm-up: JIT, caches, SQLite pages
  await reset();
  const max = await run(options);
  await reset();
  const fixed = await run({ ...options, overallRate: FIXED_RATE });
  await reset();
  return {
    rps: max.requests.average,
    p50: max.latency.p50,
    p99: max.latency.p99,
    fixedRps: fixed.requests.average,
    fixedP50: fixed.latency.p50,
    fixedP99: fixed.latency.p99,
    failures: max.non2xx + max.errors + max.timeouts + fixed.non2xx + fixed.errors + fixed.timeouts,
  };
}

interface Server {
  db: FreshDatabase;
  child: Child;
  url: string;
}

/** POST a rule, then DELETE it by the id the POST returned: one cycle is two requests. */
function cycle(base: string, createPath: string, headers: Record<string, string>, rule: Record<string, unknown>): Options {
  return {
    url: base,
    // Each connection holds at most one rule at a time, so the account's 10-rule limit holds.
    connections: 5,
    requests: [
      {
        method: 'POST',
        path: createPath,
        headers,
        body: JSON.stringify(rule),
        onResponse: (_status, body, context) => {
          (context as { id?: string }).id = JSON.parse(body).id;
        },
      },
      {
        method: 'DELETE',
        headers: { 'x-api-key': headers['x-api-key'] ?? '' },
        setupRequest: (request, context) => ({ ...request, path: `${createPath}/${(context as { id?: string }).id}` }),
      },
    ],
  };
}

const readHeaders = (s: Server) => ({ 'x-api-key': s.child.info.readerKey });
const writeHeaders = (s: Server) => ({ 'x-api-key': s.child.info.writerKey, 'content-type': 'application/json' });

async function deleteWritersRules(s: Server): Promise<void> {
  const list = (await (await fetch(`${s.url}/v1/alert-rules`, { headers: writeHeaders(s) })).json()) as { data: { id: string }[] };
  for (const { id } of list.data) await fetch(`${s.url}/v1/alert-rules/${id}`, { method: 'DELETE', headers: writeHeaders(s) });
}

interface Scenario {
  name: string;
  read: boolean;
  ours: (s: Server) => Options;
  bare: (bareUrl: string, rule: Record<string, unknown>) => Options;
  reset?: (s: Server) => Promise<void>;
}

const scenarios: Scenario[] = [
  {
    name: 'GET /v1/alert-rules (10 rules)',
    read: true,
    ours: (s) => ({ url: `${s.url}/v1/alert-rules`, headers: readHeaders(s) }),
    bare: (b) => ({ url: `${b}/list` }),
  },
  {
    name: 'GET /v1/alert-rules/{id}',
    read: true,
    ours: (s) => ({ url: `${s.url}/v1/alert-rules/${s.child.info.ruleId}`, headers: readHeaders(s) }),
    bare: (b) => ({ url: `${b}/get` }),
  },
  {
    name: 'POST + DELETE /v1/alert-rules',
    read: false,
    ours: (s) => cycle(s.url, '/v1/alert-rules', writeHeaders(s), s.child.info.rule),
    bare: (b, rule) => cycle(b, '/create', { 'x-api-key': 'unused', 'content-type': 'application/json' }, rule),
    reset: deleteWritersRules,
  },
  {
    // A Prometheus scrape: every counter and histogram, the process defaults, and the gauges
    // read when scraped (rules by state, the delivery queue from the database, apply lag).
    name: 'GET /metrics (scrape)',
    read: false,
    ours: (s) => ({ url: `${s.url}/metrics` }),
    bare: (b) => ({ url: `${b}/metrics` }),
  },
];

const databases = await benchDatabases();
process.stderr.write(`${databases.note}\n`);
const servers: Server[] = [];
const dbs: FreshDatabase[] = [];
const children: Child[] = [];
const rows: string[][] = [];
try {
  for (const kind of databases.kinds) {
    const db = await freshDatabase(kind, databases);
    dbs.push(db);
    const child = await startChild(['ours', db.url]);
    children.push(child);
    servers.push({ db, child, url: `http://127.0.0.1:${child.info.port}` });
  }
  // Bodies of exactly the sizes ours answers (on the first database), for the bare server to send as constants.
  const first = servers[0]!;
  const listBody = await (await fetch(`${first.url}/v1/alert-rules`, { headers: readHeaders(first) })).text();
  const getBody = await (await fetch(`${first.url}/v1/alert-rules/${first.child.info.ruleId}`, { headers: readHeaders(first) })).text();
  const created = await fetch(`${first.url}/v1/alert-rules`, { method: 'POST', headers: writeHeaders(first), body: JSON.stringify(first.child.info.rule) });
  const createBody = await created.text();
  await fetch(`${first.url}/v1/alert-rules/${JSON.parse(createBody).id}`, { method: 'DELETE', headers: writeHeaders(first) });
  const metricsBody = await (await fetch(`${first.url}/metrics`)).text();
  const bare = await startChild(['bare', JSON.stringify({ list: listBody, get: getBody, create: createBody, metrics: metricsBody })]);
  children.push(bare);
  const bareUrl = `http://127.0.0.1:${bare.info.port}`;

  for (const scenario of scenarios) {
    process.stderr.write(`measuring ${scenario.name}: bare ...\n`);
    const b = await measure(scenario.bare(bareUrl, first.child.info.rule));
    rows.push([scenario.name, 'bare Fastify route', b.rps.toFixed(0), '100%', '', `${b.p50}/${b.p99}`, `${b.fixedP50}/${b.fixedP99}`, String(b.failures), '']);
    let sqliteRps: number | undefined;
    for (const s of servers) {
      process.stderr.write(`measuring ${scenario.name}: ours on ${s.db.label} ...\n`);
      const reset = scenario.reset;
      const o = await measure(scenario.ours(s), reset ? () => reset(s) : undefined);
      if (s.db.kind === 'sqlite') sqliteRps = o.rps;
      let target = '';
      if (scenario.read) {
        const shareMet = o.rps >= READ_SHARE_TARGET * b.rps;
        const p99Met = o.fixedP99 < FIXED_P99_TARGET_MS;
        target = `>= 50% of bare: ${verdict(shareMet)}; p99 < ${FIXED_P99_TARGET_MS} ms @${FIXED_RATE}/s: ${verdict(p99Met)}`;
      }
      rows.push([
        '',
        `ours, ${s.db.label}`,
        o.rps.toFixed(0),
        percentOf(o.rps, b.rps),
        s.db.kind === 'postgres' && sqliteRps !== undefined ? percentOf(o.rps, sqliteRps) : '',
        `${o.p50}/${o.p99}`,
        `${o.fixedP50}/${o.fixedP99}`,
        String(o.failures),
        target,
      ]);
    }
  }
} finally {
  for (const child of children) await stopChild(child);
  for (const db of dbs) await db.drop();
}

console.log(`\n${CONNECTIONS} connections (5 for create+delete), ${DURATION_S} s per run after a 2 s warm-up; node ${process.version}`);
console.log(databases.note);
console.log(
  table(
    ['scenario', 'server', 'req/s', 'of bare', 'PostgreSQL/SQLite', 'p50/p99 ms', `@${FIXED_RATE}/s p50/p99 ms`, 'failed', 'target (reads)'],
    rows,
  ),
);
console.log(`\ntarget: reads >= 50% of bare throughput, p99 < ${FIXED_P99_TARGET_MS} ms at ${FIXED_RATE.toLocaleString('en-US')} requests/s, on each database`);
