/**
 * `npm run bench:api`: our API against a bare Fastify route answering a constant of the same
 * size, side by side in one run. The servers run in child processes (one core), autocannon
 * in this process (the other core), all on loopback.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import autocannon, { type Options, type Result } from 'autocannon';

const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 8);
const CONNECTIONS = 10;
const FIXED_RATE = 1000;

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
  const [line] = (await once(createInterface({ input: proc.stdout! }), 'line')) as [string];
  return { proc, info: JSON.parse(line) };
}

async function stopChild(child: Child): Promise<void> {
  child.proc.kill('SIGTERM');
  await once(child.proc, 'exit');
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

const ours = await startChild(['ours']);
const oursUrl = `http://127.0.0.1:${ours.info.port}`;
const readHeaders = { 'x-api-key': ours.info.readerKey };
const writeHeaders = { 'x-api-key': ours.info.writerKey, 'content-type': 'application/json' };

// Bodies of exactly the sizes ours answers, for the bare server to send as constants.
const listBody = await (await fetch(`${oursUrl}/v1/alert-rules`, { headers: readHeaders })).text();
const getBody = await (await fetch(`${oursUrl}/v1/alert-rules/${ours.info.ruleId}`, { headers: readHeaders })).text();
const created = await fetch(`${oursUrl}/v1/alert-rules`, { method: 'POST', headers: writeHeaders, body: JSON.stringify(ours.info.rule) });
const createBody = await created.text();
await fetch(`${oursUrl}/v1/alert-rules/${JSON.parse(createBody).id}`, { method: 'DELETE', headers: writeHeaders });
const bare = await startChild(['bare', JSON.stringify({ list: listBody, get: getBody, create: createBody })]);
const bareUrl = `http://127.0.0.1:${bare.info.port}`;

/** POST a rule, then DELETE it by the id the POST returned: one cycle is two requests. */
function cycle(base: string, createPath: string, headers: Record<string, string>): Options {
  return {
    url: base,
    // Each connection holds at most one rule at a time, so the account's 10-rule limit holds.
    connections: 5,
    requests: [
      {
        method: 'POST',
        path: createPath,
        headers,
        body: JSON.stringify(ours.info.rule),
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

async function deleteWritersRules(): Promise<void> {
  const list = (await (await fetch(`${oursUrl}/v1/alert-rules`, { headers: writeHeaders })).json()) as { data: { id: string }[] };
  for (const { id } of list.data) await fetch(`${oursUrl}/v1/alert-rules/${id}`, { method: 'DELETE', headers: writeHeaders });
}

const scenarios: [string, Options, Options, (() => Promise<void>)?][] = [
  ['GET /v1/alert-rules (10 rules)', { url: `${oursUrl}/v1/alert-rules`, headers: readHeaders }, { url: `${bareUrl}/list` }],
  ['GET /v1/alert-rules/{id}', { url: `${oursUrl}/v1/alert-rules/${ours.info.ruleId}`, headers: readHeaders }, { url: `${bareUrl}/get` }],
  [
    'POST + DELETE /v1/alert-rules',
    cycle(oursUrl, '/v1/alert-rules', writeHeaders),
    cycle(bareUrl, '/create', { 'x-api-key': 'unused', 'content-type': 'application/json' }),
    deleteWritersRules,
  ],
];

const rows: string[][] = [];
for (const [name, oursOptions, bareOptions, reset] of scenarios) {
  process.stderr.write(`measuring ${name} ...\n`);
  const b = await measure(bareOptions);
  const o = await measure(oursOptions, reset);
  rows.push([
    name,
    o.rps.toFixed(0),
    b.rps.toFixed(0),
    `${((o.rps / b.rps) * 100).toFixed(0)}%`,
    `${o.p50}/${o.p99}`,
    `${b.p50}/${b.p99}`,
    `${o.fixedP50}/${o.fixedP99}`,
    `${b.fixedP50}/${b.fixedP99}`,
    String(o.failures + b.failures),
  ]);
}

await stopChild(ours);
await stopChild(bare);

const header = ['scenario', 'ours req/s', 'bare req/s', 'ours/bare', 'ours p50/p99 ms', 'bare p50/p99 ms', `ours @${FIXED_RATE}/s p50/p99`, `bare @${FIXED_RATE}/s p50/p99`, 'failed'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ');
console.log(`\n${CONNECTIONS} connections (5 for create+delete), ${DURATION_S} s per run after a 2 s warm-up; node ${process.version}`);
console.log(line(header));
console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
for (const row of rows) console.log(line(row));
console.log('\ntarget: reads >= 50% of bare throughput, p99 < 10 ms at 1,000 requests/s');
