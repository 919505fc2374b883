/**
 * `npm run bench:delivery`: webhook delivery measured against loopback HTTPS receivers.
 *
 *  (a) throughput: signed, durable deliveries/s drained by the real worker from the database,
 *      on SQLite and on PostgreSQL (each round a fresh database: a temporary file, a new
 *      schema; see bench/helpers.ts for which PostgreSQL), side by side with a bare loop that signs and POSTs the same bodies through the same
 *      HTTP client at the same concurrency but records nothing;
 *  (b) latency: committed alerts.triggered -> receipt at a steady 100 events/s, and end to
 *      end from the 202 of the telemetry batch that crosses a threshold to the verified
 *      webhook at the receiver;
 *  (c) failure isolation: healthy-endpoint latency with and without an endpoint (of the same
 *      account) that always times out; and another account's healthy-endpoint latency with and
 *      without an account whose ten endpoints all hang (30 s timeout), with the per-account
 *      slot bound at its default and switched off (bound = global concurrency).
 *  (b) and (c) run on SQLite only.
 *
 * This process makes a throwaway CA with the openssl CLI and runs the receivers; the measured
 * side runs in child processes (this file again, `child <mode>`) started with
 * NODE_EXTRA_CA_CERTS pointing at that CA, so they trust it through Node's standard
 * mechanism. Two cores: receivers on one, the measured process on the other. Every socket is
 * on 127.0.0.1.
 */
import { fork, execFileSync, type ChildProcess } from 'node:child_process';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { pino } from 'pino';
import { loadConfig, type Config } from '../src/config.js';
import { createApiKeysService } from '../src/domain/api-keys-service.js';
import { systemClock, toIso } from '../src/domain/clock.js';
import { ID_PREFIX, newId } from '../src/domain/ids.js';
import { createWebhookEndpointsService } from '../src/domain/webhook-endpoints-service.js';
import { createAddressGuard } from '../src/delivery/address-guard.js';
import { createWebhookClient } from '../src/delivery/webhook-client.js';
import { createDeliveryWorker } from '../src/delivery/worker.js';
import { webhookHeaders } from '../src/domain/webhook-headers.js';
import { createLogger } from '../src/logger.js';
import { createService, type Service } from '../src/service.js';
import type { AlertEvent } from '../src/domain/ports/alert-events-repository.js';
import { insertDeliveriesForEvent } from '../src/store/deliveries-repository.js';
import { openStore, type Store } from '../src/store/store.js';
import { benchDatabases, DATABASE_LABEL, fmtMs as fmt, percentile, percentOf, table, verdict, withFreshDatabase, type DatabaseKind } from './helpers.js';

const SELF = fileURLToPath(import.meta.url);
const THROUGHPUT_DELIVERIES = Number(process.env.BENCH_DELIVERIES ?? 16_000);
const WARMUP_DELIVERIES = 2_000;
const THROUGHPUT_ENDPOINTS = Number(process.env.BENCH_ENDPOINTS ?? 8);
/** Rounds of (a): BENCH_ROUNDS, else 3 on SQLite alone and 2 with PostgreSQL too (to stay near 5 minutes on 2 cores). */
const throughputRounds = (databases: number) => Number(process.env.BENCH_ROUNDS ?? (databases > 1 ? 2 : 3));
const LATENCY_RATE = 100; // events/s
const LATENCY_SECONDS = Number(process.env.BENCH_LATENCY_S ?? 10);
const E2E_SAMPLES = 200;
const E2E_RATE = 40; // crossing batches/s
const ISOLATION_SECONDS = Number(process.env.BENCH_ISOLATION_S ?? 8);
const ISOLATION_RATE = 50; // events/s per account
const BAD_TIMEOUT_MS = 1000;
const HANGING_TIMEOUT_MS = 30_000;
const HANGING_RATE = 20; // events/s of the hanging account, 10 deliveries each
const SECRET_KEY = 'bench-delivery-secret-key-0123456789abcdef';
const CHILD_DEADLINE_MS = 120_000;
const DELIVERY_TARGET = 2000; // deliveries/s
const pgAnalyze = process.env.BENCH_PG_ANALYZE !== '0';

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes. */
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

// ---------------------------------------------------------------------------------------
// Shared by parent and children
// ---------------------------------------------------------------------------------------

type Message = { type: string } & Record<string, unknown>;

interface ThroughputResult {
  deliveries: number;
  ms: number;
  failed: number;
  deliveredInDb?: number;
  expectedInDb?: number;
  insertMs?: number;
  concurrency?: number;
  perEndpoint?: number;
  /** Event-loop utilization of the measured process during the run (1 = never idle). */
  busy: number;
  /** Claim transactions of the worker, and the deliveries they claimed (warm-up included). */
  claims?: number;
  claimedRows?: number;
  /** Time spent in claim transactions, and summed over attempts, from recordAttempt to its commit (warm-up included). */
  claimMs?: number;
  recordMs?: number;
}
type Commits = [string, number, number][];

/** A body shaped like the engine's (src/engine/engine.ts eventFor), about 400 bytes. */
function eventBody(id: string, rule: { id: string; name: string }, at: string): string {
  return JSON.stringify({
    id,
    event_type: 'alerts.triggered',
    created_at: at,
    alert: {
      id: rule.id,
      name: rule.name,
      project_id: 'proj_bench',
      metric: 'turn_latency_p95',
      operator: '>=',
      threshold_value: 1500,
      window_duration: '5m',
      current_value: 1731,
      previous_state: 'ok',
      triggered_at: at,
    },
  });
}

/** `database`: a directory for a bench.db file, or a DATABASE_URL ({ url }). */
function benchConfig(database: string | { url: string }, env: Record<string, string> = {}): Config {
  return loadConfig({
    DATABASE_URL: typeof database === 'string' ? join(database, 'bench.db') : database.url,
    LOG_LEVEL: 'info',
    HOST: '127.0.0.1',
    PORT: '0',
    ALERTS_SECRET_KEY: SECRET_KEY,
    ALERTS_WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32',
    // The bounds can be varied for a run: ALERTS_DELIVERY_CONCURRENCY=256 BENCH_ENDPOINTS=32.
    ...(process.env.ALERTS_DELIVERY_CONCURRENCY ? { ALERTS_DELIVERY_CONCURRENCY: process.env.ALERTS_DELIVERY_CONCURRENCY } : {}),
    ...env,
  });
}

// Logs go to /dev/null: their cost is part of delivering, the output is not.
const benchLogger = () => createLogger('info', pino.destination({ dest: '/dev/null', sync: false }));

// ---------------------------------------------------------------------------------------
// Children: the measured side
// ---------------------------------------------------------------------------------------

const send = (message: Message) => process.send!(message);
const inbox: Message[] = [];
const waiting: ((m: Message) => boolean)[] = [];
/** The next message of `type` from the parent. */
function nextMessage(type: string): Promise<Message> {
  const index = inbox.findIndex((m) => m.type === type);
  if (index >= 0) return Promise.resolve(inbox.splice(index, 1)[0]!);
  return new Promise((resolve) => {
    waiting.push((m) => {
      if (m.type !== type) return false;
      resolve(m);
      return true;
    });
  });
}

/** Creates an account with its key, through the same services the CLI and API use. */
async function benchAccount(store: Store, name: string) {
  const keys = createApiKeysService({ accounts: store.accounts, apiKeys: store.apiKeys, clock: systemClock });
  const { record, key } = await keys.create(name);
  return { accountId: record.account_id, key };
}

async function insertRule(store: Store, accountId: string, name: string) {
  const rule = await store.alertRules.insertWithinLimit(
    accountId,
    {
      id: newId(ID_PREFIX.alertRule),
      name,
      project_id: 'proj_bench',
      metric: 'turn_latency_p95',
      operator: '>=',
      threshold_value: 1500,
      window_duration: '5m',
      // Disabled: the engine leaves it alone while the bench writes its events.
      enabled: false,
      current_state: 'unknown',
      since: null,
      created_at: toIso(Date.now()),
    },
    10,
  );
  if (rule === 'limit_exceeded') throw new Error('rule limit');
  return rule;
}

/** The worker draining pre-created deliveries: (a), ours, on the fresh database the parent made (and drops). */
async function childOurs(urls: string[], count: number, databaseUrl: string): Promise<Message & ThroughputResult> {
  const config = benchConfig({ url: databaseUrl });
  const store = await openStore({ location: config.database, secretKey: config.secretKey, deliveryAttempts: config.delivery.retrySchedule.length });
  // Diagnosis only (BENCH_SQLITE_SYNC=NORMAL): how much of the cost is the disk sync of each commit.
  if (process.env.BENCH_SQLITE_SYNC && config.database.kind === 'sqlite') await sql.raw(`pragma synchronous = ${process.env.BENCH_SQLITE_SYNC === 'NORMAL' ? 'NORMAL' : 'FULL'}`).execute(store.db);
  // Up to 8 endpoints per account (an account may have 10).
  const endpoints = createWebhookEndpointsService({ endpoints: store.webhookEndpoints, clock: systemClock });
  const accounts: { accountId: string; rule: { id: string; name: string }; endpoints: number }[] = [];
  for (let first = 0; first < urls.length; first += 8) {
    const { accountId } = await benchAccount(store, `bench-${first / 8}`);
    const group = urls.slice(first, first + 8);
    for (const [i, url] of group.entries()) await endpoints.create(accountId, { name: `receiver ${first + i}`, url, event_types: ['alerts.triggered'] });
    accounts.push({ accountId, rule: await insertRule(store, accountId, 'High turn latency (p95)'), endpoints: group.length });
  }

  /** Events for every endpoint, committed in one transaction, as the engine would have. */
  const insert = async (deliveries: number) => {
    const events = Math.ceil(deliveries / urls.length);
    const started = now();
    await store.db.transaction().execute(async (trx) => {
      const base = Date.now() - events;
      for (let i = 0; i < events; i++) {
        for (const { accountId, rule } of accounts) {
          const id = newId(ID_PREFIX.event);
          // One millisecond apart, as events written over time are.
          const at = toIso(base + i);
          const event: AlertEvent = { id, account_id: accountId, rule_id: rule.id, event_type: 'alerts.triggered', payload: eventBody(id, rule, at), created_at: at };
          await trx.insertInto('alert_events').values(event).execute();
          await insertDeliveriesForEvent(trx, event, config.delivery.retrySchedule.length, base + i);
        }
      }
    });
    return { deliveries: events * urls.length, ms: now() - started };
  };

  // Counts what the worker records, to know when everything is done.
  let recorded = 0;
  let failed = 0;
  let claims = 0;
  let claimedRows = 0;
  let claimMs = 0;
  let recordMs = 0;
  let target = 0;
  let reached: () => void = () => {};
  const inner = store.deliveries;
  const counting: Store = {
    ...store,
    deliveries: {
      ...inner,
      async claimDue(...args) {
        const started = now();
        const claimed = await inner.claimDue(...args);
        claimMs += now() - started;
        claims += 1;
        claimedRows += claimed.length;
        return claimed;
      },
      async recordAttempt(delivery, attempt, outcome, nowIso) {
        const started = now();
        const result = await inner.recordAttempt(delivery, attempt, outcome, nowIso);
        recordMs += now() - started;
        recorded += 1;
        if (outcome.kind !== 'delivered') failed += 1;
        if (recorded >= target) reached();
        return result;
      },
    },
  };
  const until = (n: number) =>
    new Promise<void>((resolve) => {
      target = n;
      reached = resolve;
      if (recorded >= n) resolve();
    });

  const client = createWebhookClient({ guard: createAddressGuard(config.delivery.allowedCidrs) });
  // Wired exactly as src/service.ts wires it.
  const worker = createDeliveryWorker({
    instanceId: 'bench-delivery',
    store: counting,
    clock: systemClock,
    logger: benchLogger(),
    client,
    retrySchedule: config.delivery.retrySchedule,
    concurrency: config.delivery.concurrency,
    perEndpointConcurrency: config.delivery.perEndpointConcurrency,
    pollIntervalMs: 1000,
    stopGraceMs: 5000,
  });

  const warm = await insert(WARMUP_DELIVERIES);
  await worker.start();
  await until(warm.deliveries);

  const measured = await insert(count);
  // PostgreSQL plans from table statistics, which autovacuum gathers a minute or so after
  // changes; a schema created and bulk-loaded seconds ago has none, and the claim query then
  // joins and sorts every due delivery on each claim (about 10x slower). Gathered here, not
  // counted, as a database in steady state has them; BENCH_PG_ANALYZE=0 measures without.
  if (pgAnalyze && config.database.kind === 'postgres') await sql`analyze`.execute(store.db);
  const done = until(warm.deliveries + measured.deliveries);
  const started = now();
  const elu = performance.eventLoopUtilization();
  worker.kick();
  await done;
  const ms = now() - started;
  const busy = performance.eventLoopUtilization(elu).utilization;
  await worker.stop();
  await client.close();
  const { n } = (await store.db
    .selectFrom('webhook_deliveries')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('status', '=', 'delivered')
    .executeTakeFirstOrThrow()) as { n: number };
  await store.close();
  return {
    type: 'result',
    deliveries: measured.deliveries,
    ms,
    failed,
    deliveredInDb: Number(n),
    expectedInDb: warm.deliveries + measured.deliveries,
    insertMs: measured.ms,
    concurrency: config.delivery.concurrency,
    perEndpoint: config.delivery.perEndpointConcurrency,
    busy,
    claims,
    claimedRows,
    claimMs,
    recordMs,
  };
}

/** The same bodies signed and POSTed through the same client, recording nothing: (a), bare. */
async function childBare(urls: string[], count: number): Promise<Message & ThroughputResult> {
  const config = benchConfig(tmpdir());
  const client = createWebhookClient({ guard: createAddressGuard(config.delivery.allowedCidrs) });
  const rule = { id: newId(ID_PREFIX.alertRule), name: 'High turn latency (p95)' };
  const secrets = urls.map(() => 'whsec_' + newId(ID_PREFIX.event));
  let failed = 0;

  const run = async (deliveries: number) => {
    const events = Math.ceil(deliveries / urls.length);
    const queues = urls.map(() => [] as { id: string; body: string }[]);
    const base = Date.now() - events;
    for (let i = 0; i < events; i++) {
      const id = newId(ID_PREFIX.event);
      const body = eventBody(id, rule, toIso(base + i));
      for (const queue of queues) queue.push({ id, body });
    }
    const started = now();
    // The worker's bounds: perEndpoint at a time per endpoint, and no more than the global one.
    const perEndpoint = Math.min(config.delivery.perEndpointConcurrency, Math.floor(config.delivery.concurrency / urls.length));
    await Promise.all(
      queues.flatMap((queue, e) =>
        Array.from({ length: perEndpoint }, async () => {
          for (let item = queue.pop(); item; item = queue.pop()) {
            const timestamp = Math.floor(Date.now() / 1000);
            const result = await client.send({
              url: urls[e]!,
              headers: webhookHeaders({}, [secrets[e]!], item.id, timestamp, item.body),
              body: item.body,
              timeoutMs: 5000,
            });
            if (result.statusCode === null || result.statusCode >= 300) failed += 1;
          }
        }),
      ),
    );
    return { deliveries: events * urls.length, ms: now() - started };
  };

  await run(WARMUP_DELIVERIES);
  const elu = performance.eventLoopUtilization();
  const measured = await run(count);
  const busy = performance.eventLoopUtilization(elu).utilization;
  await client.close();
  return { type: 'result', deliveries: measured.deliveries, ms: measured.ms, failed, busy };
}

/** A service with its worker, as `alerts serve` runs it, in this process. */
async function startBenchService(env: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'alerts-bench-delivery-'));
  const config = benchConfig(dir, env);
  const service = await createService({ config, logger: benchLogger() });
  const api = async (key: string, method: 'POST' | 'PATCH', url: string, payload: unknown) => {
    const response = await service.app.inject({ method, url, headers: { 'x-api-key': key }, payload: payload as object });
    if (response.statusCode >= 300) throw new Error(`${method} ${url}: ${response.statusCode} ${response.body}`);
    return response.json() as { id: string; signing_secret?: string };
  };
  const close = async () => {
    await service.close();
    rmSync(dir, { recursive: true, force: true });
  };
  return { service, api, close };
}

/**
 * Commits alerts.triggered events at a steady rate, each exactly as the engine does: the
 * rule's new state and the event (with its deliveries) in one transaction, then a kick to
 * the worker. Returns each event's id, account and commit time.
 */
async function steadyEvents(
  service: Service,
  targets: { accountId: string; rule: { id: string; name: string } }[],
  perSecond: number,
  seconds: number,
): Promise<Commits> {
  const commits: Commits = [];
  const writes: Promise<void>[] = [];
  const interval = 1000 / perSecond;
  const total = Math.round(perSecond * seconds);
  const started = now();
  for (let i = 0; i < total; i++) {
    await sleep(started + i * interval - now());
    const t = i % targets.length;
    const { accountId, rule } = targets[t]!;
    const id = newId(ID_PREFIX.event);
    const at = toIso(Date.now());
    const event: AlertEvent = { id, account_id: accountId, rule_id: rule.id, event_type: 'alerts.triggered', payload: eventBody(id, rule, at), created_at: at };
    const evaluation = { current_state: 'alert' as const, since: at, last_evaluated_at: at, current_value: 1731 };
    writes.push(
      service.store.alertRules.saveEvaluation(accountId, rule.id, evaluation, event).then(() => {
        commits.push([id, t, now()]);
        service.deliveryWorker.kick();
      }),
    );
  }
  await Promise.all(writes);
  return commits;
}

/** (b) committed event -> receipt at 100 events/s. */
async function childLatency(url: string): Promise<void> {
  const { service, api, close } = await startBenchService();
  const { accountId, key } = await benchAccount(service.store, 'bench');
  const endpoint = await api(key, 'POST', '/v1/webhook-endpoints', { name: 'receiver', url, event_types: ['alerts.triggered'] });
  const rule = await insertRule(service.store, accountId, 'High turn latency (p95)');
  send({ type: 'ready', secrets: { [new URL(url).pathname]: endpoint.signing_secret } });
  await nextMessage('go');
  await steadyEvents(service, [{ accountId, rule }], LATENCY_RATE, 2); // warm-up
  const commits = await steadyEvents(service, [{ accountId, rule }], LATENCY_RATE, LATENCY_SECONDS);
  await sleep(500);
  send({ type: 'commits', commits });
  await nextMessage('stop');
  await close();
}

/** (b) end to end: the service listens; the parent sends telemetry that crosses thresholds. */
async function childEndToEnd(urlBase: string, accounts: number): Promise<void> {
  const { service, api, close } = await startBenchService();
  await service.app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = service.app.server.address() as AddressInfo;
  const setup: { key: string; path: string; secret: string; projects: string[] }[] = [];
  for (let a = 0; a < accounts; a++) {
    const { key } = await benchAccount(service.store, `e2e-${a}`);
    const url = `${urlBase}/e2e/${a}`;
    const endpoint = await api(key, 'POST', '/v1/webhook-endpoints', { name: 'receiver', url, event_types: ['alerts.triggered'] });
    const projects: string[] = [];
    for (let r = 0; r < 10; r++) {
      const project = `proj_${a}_${r}`;
      // no_data until the project's first crash, which makes it fire.
      await api(key, 'POST', '/v1/alert-rules', {
        name: `Crashes in ${project}`,
        project_id: project,
        metric: 'call_crashes',
        operator: '>',
        threshold_value: 0,
        window_duration: '5m',
      });
      projects.push(project);
    }
    setup.push({ key, path: new URL(url).pathname, secret: endpoint.signing_secret as string, projects });
  }
  send({ type: 'ready', port, accounts: setup });
  await nextMessage('stop');
  await close();
}

/** (c) healthy endpoints of two accounts, then a hanging endpoint added to the first. */
async function childIsolation(healthyBase: string, badUrl: string): Promise<void> {
  // Retries of the bad endpoint come back after 1 s instead of minutes: the harshest case.
  const { service, api, close } = await startBenchService({ ALERTS_RETRY_SCHEDULE: '0,1s,1s,1s,1s,1s' });
  const secrets: Record<string, string> = {};
  const targets: { accountId: string; key: string; rule: { id: string; name: string } }[] = [];
  for (const name of ['a', 'b']) {
    const { accountId, key } = await benchAccount(service.store, `isolation-${name}`);
    const url = `${healthyBase}/iso/${name}`;
    const endpoint = await api(key, 'POST', '/v1/webhook-endpoints', { name: 'healthy', url, event_types: ['alerts.triggered'] });
    secrets[new URL(url).pathname] = endpoint.signing_secret as string;
    targets.push({ accountId, key, rule: await insertRule(service.store, accountId, `Rule of ${name}`) });
  }
  send({ type: 'ready', secrets });

  await nextMessage('go');
  await steadyEvents(service, targets, ISOLATION_RATE * 2, 2); // warm-up
  const without = await steadyEvents(service, targets, ISOLATION_RATE * 2, ISOLATION_SECONDS);
  await sleep(500);
  send({ type: 'commits', commits: without });

  await nextMessage('go');
  const bad = await api(targets[0]!.key, 'POST', '/v1/webhook-endpoints', {
    name: 'always times out',
    url: badUrl,
    event_types: ['alerts.triggered'],
    timeout_ms: BAD_TIMEOUT_MS,
  });
  await steadyEvents(service, targets, ISOLATION_RATE * 2, 3); // the bad endpoint's backlog builds up
  const withBad = await steadyEvents(service, targets, ISOLATION_RATE * 2, ISOLATION_SECONDS);
  await sleep(500);
  const attempts = await service.store.db
    .selectFrom('webhook_attempts as a')
    .innerJoin('webhook_deliveries as d', 'd.id', 'a.delivery_id')
    .select(['a.error_class', (eb) => eb.fn.countAll<number>().as('n')])
    .where('d.endpoint_id', '=', bad.id)
    .groupBy('a.error_class')
    .execute();
  const backlog = await service.store.db
    .selectFrom('webhook_deliveries')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('endpoint_id', '=', bad.id)
    .where('status', 'in', ['pending', 'in_flight'])
    .executeTakeFirstOrThrow();
  send({ type: 'commits', commits: withBad, badAttempts: attempts, badBacklog: Number(backlog.n) });
  await nextMessage('stop');
  // Leave the hanging attempts to the parent closing its receiver.
  await close();
}

/**
 * (c) one account (c) whose ten endpoints all hang, beside two healthy accounts (a, b): their
 * latency without c's traffic, then while c's events pile up behind its hanging endpoints.
 */
async function childHangingAccount(healthyBase: string, badBase: string, accountConcurrency: number): Promise<void> {
  const { service, api, close } = await startBenchService({
    ALERTS_DELIVERY_ACCOUNT_CONCURRENCY: String(accountConcurrency),
    ALERTS_SHUTDOWN_TIMEOUT_MS: '2000',
  });
  const secrets: Record<string, string> = {};
  const healthy: { accountId: string; rule: { id: string; name: string } }[] = [];
  for (const name of ['a', 'b']) {
    const { accountId, key } = await benchAccount(service.store, `hanging-bench-${name}`);
    const url = `${healthyBase}/flood/${name}`;
    const endpoint = await api(key, 'POST', '/v1/webhook-endpoints', { name: 'healthy', url, event_types: ['alerts.triggered'] });
    secrets[new URL(url).pathname] = endpoint.signing_secret as string;
    healthy.push({ accountId, rule: await insertRule(service.store, accountId, `Rule of ${name}`) });
  }
  const hanging = await benchAccount(service.store, 'hanging-bench-c');
  for (let i = 0; i < 10; i++) {
    await api(hanging.key, 'POST', '/v1/webhook-endpoints', {
      name: `hangs ${i}`,
      url: `${badBase}/c/${i}`,
      event_types: ['alerts.triggered'],
      timeout_ms: HANGING_TIMEOUT_MS,
    });
  }
  const hangingRule = await insertRule(service.store, hanging.accountId, 'Rule of c');
  send({ type: 'ready', secrets });

  await nextMessage('go');
  await steadyEvents(service, healthy, ISOLATION_RATE * 2, 2); // warm-up
  const without = await steadyEvents(service, healthy, ISOLATION_RATE * 2, ISOLATION_SECONDS);
  await sleep(500);
  send({ type: 'commits', commits: without });

  await nextMessage('go');
  const flood = steadyEvents(service, [{ accountId: hanging.accountId, rule: hangingRule }], HANGING_RATE, ISOLATION_SECONDS + 2);
  await sleep(2000); // c's hanging attempts take their slots first
  const withHanging = await steadyEvents(service, healthy, ISOLATION_RATE * 2, ISOLATION_SECONDS);
  await flood;
  await sleep(500);
  send({ type: 'commits', commits: withHanging });
  await nextMessage('stop');
  await close();
}

// ---------------------------------------------------------------------------------------
// Parent: receivers, orchestration, the table
// ---------------------------------------------------------------------------------------

interface Tls {
  dir: string;
  caPath: string;
  cert: Buffer;
  key: Buffer;
}

/** A throwaway CA and a certificate for 127.0.0.1 signed by it (EC P-256, for fast handshakes). */
function makeTls(): Tls {
  const dir = mkdtempSync(join(tmpdir(), 'alerts-bench-tls-'));
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=alerts bench CA (throwaway)',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  openssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
  writeFileSync(join(dir, 'server.ext'), 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n');
  openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '1', '-sha256', '-extfile', 'server.ext');
  return { dir, caPath: join(dir, 'ca.crt'), cert: readFileSync(join(dir, 'server.crt')), key: readFileSync(join(dir, 'server.key')) };
}

interface Receipt {
  path: string;
  eventId: string;
  ruleName: string;
  at: number;
}

interface Receiver {
  port: number;
  url(path: string): string;
  /** path -> signing secret: requests to a known path are verified before they count as received. */
  secrets: Map<string, string>;
  receipts: Receipt[];
  requests: number;
  badSignatures: number;
  close(): Promise<void>;
}

/** The documented algorithm, independent of src/domain/webhook-signing.ts. */
function verifies(secret: string, timestamp: string | undefined, signature: string | undefined, body: Buffer): boolean {
  if (!timestamp || !signature || !/^\d+$/.test(timestamp) || Math.abs(Number(timestamp) - Date.now() / 1000) > 300) return false;
  const expected = createHmac('sha256', Buffer.from(secret, 'utf8')).update(`${timestamp}.`).update(body).digest();
  const actual = Buffer.from(signature, 'hex');
  return /^[0-9a-f]{64}$/.test(signature) && timingSafeEqual(actual, expected);
}

/** An HTTPS receiver on 127.0.0.1 that answers 200 at once, or ('hang') never answers. */
async function startReceiver(tls: Tls, mode: 'ok' | 'hang'): Promise<Receiver> {
  const sockets = new Set<Socket>();
  const receiver: Receiver = {
    port: 0,
    url: (path) => `https://127.0.0.1:${receiver.port}${path}`,
    secrets: new Map(),
    receipts: [],
    requests: 0,
    badSignatures: 0,
    close: async () => {},
  };
  const server: Server = createServer({ cert: tls.cert, key: tls.key, keepAliveTimeout: 30_000 }, (req, res) => {
    receiver.requests += 1;
    if (mode === 'hang') return;
    const path = req.url ?? '';
    const secret = receiver.secrets.get(path);
    if (secret === undefined) {
      // Throughput receiver: answer at once, without reading more than needed.
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'text/plain' }).end('ok'));
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const header = (name: string) => req.headers[name] as string | undefined;
      if (!verifies(secret, header('x-polyai-timestamp'), header('x-polyai-signature'), body)) {
        receiver.badSignatures += 1;
        res.writeHead(400).end();
        return;
      }
      const parsed = JSON.parse(body.toString('utf8')) as { id: string; alert: { name: string } };
      const receipt = { path, eventId: header('x-polyai-event-id') ?? '', ruleName: parsed.alert.name, at: now() };
      if (parsed.id !== receipt.eventId) receiver.badSignatures += 1;
      receiver.receipts.push(receipt);
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, () => resolve()));
  receiver.port = (server.address() as AddressInfo).port;
  receiver.close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const socket of sockets) socket.destroy();
    });
  return receiver;
}

interface Child {
  proc: ChildProcess;
  next(type: string): Promise<Message>;
  send(message: Message): void;
  exited: Promise<void>;
}

/** Children still running, killed if the bench fails half-way. */
const children = new Set<ChildProcess>();

function startChild(tls: Tls, args: string[]): Child {
  const proc = fork(SELF, ['child', ...args], {
    env: { ...process.env, NODE_EXTRA_CA_CERTS: tls.caPath },
    // BENCH_CPU_PROF=1 writes a CPU profile of each child to $TMPDIR/alerts-bench-profiles.
    execArgv: process.env.BENCH_CPU_PROF === '1' ? ['--cpu-prof', `--cpu-prof-dir=${join(tmpdir(), 'alerts-bench-profiles')}`] : [],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.add(proc);
  // No part takes anywhere near this long; a stuck child must not hang the bench.
  const watchdog = setTimeout(() => proc.kill('SIGKILL'), CHILD_DEADLINE_MS);
  proc.once('exit', () => {
    clearTimeout(watchdog);
    children.delete(proc);
  });
  const messages: Message[] = [];
  const waiters: ((m: Message) => boolean)[] = [];
  proc.on('message', (m: Message) => {
    const index = waiters.findIndex((w) => w(m));
    if (index >= 0) waiters.splice(index, 1);
    else messages.push(m);
  });
  const exited = new Promise<void>((resolve, reject) =>
    proc.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`bench child ${args[0]} exited with ${code}`)))),
  );
  return {
    proc,
    exited,
    send: (m) => proc.send(m),
    next: (type) => {
      const index = messages.findIndex((m) => m.type === type);
      if (index >= 0) return Promise.resolve(messages.splice(index, 1)[0]!);
      return Promise.race([
        new Promise<Message>((resolve) =>
          waiters.push((m) => {
            if (m.type !== type) return false;
            resolve(m);
            return true;
          }),
        ),
        exited.then(() => Promise.reject(new Error(`bench child ${args[0]} exited before sending ${type}`))),
      ]);
    },
  };
}

interface Stats {
  n: number;
  p50: number;
  p99: number;
  max: number;
  missing: number;
}

function stats(latencies: number[], expected: number): Stats {
  const sorted = [...latencies].sort((a, b) => a - b);
  return { n: sorted.length, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: sorted[sorted.length - 1] ?? NaN, missing: expected - sorted.length };
}

const fmtStats = (s: Stats) => `${fmt(s.p50)} / ${fmt(s.p99)} / ${fmt(s.max)}${s.missing > 0 ? ` (${s.missing} missing)` : ''}`;

/** Latency of each committed event to its first verified receipt. */
function commitToReceipt(commits: Commits, receiver: Receiver, filter: (t: number) => boolean = () => true): Stats {
  const firstReceipt = new Map<string, number>();
  for (const r of receiver.receipts) if (!firstReceipt.has(r.eventId)) firstReceipt.set(r.eventId, r.at);
  const chosen = commits.filter(([, t]) => filter(t));
  const latencies = chosen.flatMap(([id, , at]) => {
    const received = firstReceipt.get(id);
    return received === undefined ? [] : [received - at];
  });
  return stats(latencies, chosen.length);
}

const p99Verdict = (s: Stats, p99: number) => `p99 <= ${p99}: ${verdict(s.missing === 0 && s.p99 <= p99)}`;

async function benchThroughput(tls: Tls): Promise<string[]> {
  // 8 endpoints (one receiver, so one origin, each) x 8 per endpoint = 64: both default bounds.
  process.stderr.write('(a) throughput ...\n');
  const databases = await benchDatabases();
  process.stderr.write(`${databases.note}\n`);
  const receivers = await Promise.all(Array.from({ length: THROUGHPUT_ENDPOINTS }, () => startReceiver(tls, 'ok')));
  const urls = receivers.map((r) => r.url('/hook'));
  const runChild = async (mode: string, databaseUrl?: string) => {
    const child = startChild(tls, [mode, JSON.stringify({ urls, count: THROUGHPUT_DELIVERIES, databaseUrl })]);
    const result = await child.next('result');
    await child.exited;
    return result as unknown as ThroughputResult;
  };
  // Rounds alternate, each side in a fresh process (ours on a fresh database), so that load
  // from outside the bench (other processes on these 2 cores) hits every side alike; the
  // best round of each is compared.
  type Side = 'bare' | DatabaseKind;
  const sides: Side[] = ['bare', ...databases.kinds];
  const rounds: Partial<Record<Side, ThroughputResult>>[] = [];
  const roundCount = throughputRounds(databases.kinds.length);
  try {
    for (let round = 0; round < roundCount; round++) {
      const results: Partial<Record<Side, ThroughputResult>> = {};
      for (const side of sides) {
        process.stderr.write(`(a) round ${round + 1}/${roundCount}: ${side === 'bare' ? 'bare' : `ours on ${DATABASE_LABEL[side]}`} ...\n`);
        results[side] = side === 'bare' ? await runChild('bare') : await withFreshDatabase(side, databases, (db) => runChild('ours', db.url));
      }
      rounds.push(results);
    }
  } finally {
    await Promise.all(receivers.map((r) => r.close()));
  }

  const rate = (r: ThroughputResult) => (r.deliveries / r.ms) * 1000;
  const best = (side: Side) => rounds.map((r) => r[side]!).reduce((a, b) => (rate(b) > rate(a) ? b : a));
  const every = (side: Side) => rounds.map((r) => rate(r[side]!).toFixed(0)).join(', ');
  const bare = best('bare');
  const bareRate = rate(bare);
  const sqliteRate = rate(best('sqlite'));
  const rows: string[][] = [];
  const notes: string[] = [];
  for (const kind of databases.kinds) {
    const ours = best(kind);
    const oursRate = rate(ours);
    rows.push([
      `ours on ${DATABASE_LABEL[kind]}: worker, signed, durable`,
      oursRate.toFixed(0),
      `${(ours.ms / 1000).toFixed(2)} s`,
      `${(ours.busy * 100).toFixed(0)}%`,
      String(ours.failed),
      `${ours.deliveredInDb}/${ours.expectedInDb} delivered in db`,
      every(kind),
      percentOf(oursRate, bareRate),
      kind === 'sqlite' ? '' : percentOf(oursRate, sqliteRate),
      `>= ${DELIVERY_TARGET.toLocaleString('en-US')}/s: ${verdict(oursRate >= DELIVERY_TARGET)}; >= 50% of bare: ${verdict(oursRate >= bareRate / 2)}`,
    ]);
    notes.push(
      `    ${DATABASE_LABEL[kind]}: the worker claimed ${ours.claimedRows} deliveries in ${ours.claims} claims (${((ours.claimedRows ?? 0) / (ours.claims || 1)).toFixed(0)} per claim, ` +
        `${fmt((ours.claimMs ?? 0) / (ours.claims || 1))} ms each); recording an attempt took ${fmt((ours.recordMs ?? 0) / (ours.claimedRows || 1))} ms to its commit on average; ` +
        `creating them (one transaction) took ${((ours.insertMs ?? 0) / 1000).toFixed(2)} s, not counted`,
    );
  }
  if (databases.kinds.includes('postgres')) {
    notes.push(
      pgAnalyze
        ? '    PostgreSQL: ANALYZE ran after the deliveries were created (not counted), as autovacuum would have in a database in steady state; BENCH_PG_ANALYZE=0 measures a never-analyzed schema'
        : '    PostgreSQL: BENCH_PG_ANALYZE=0: the schema was never analyzed (no planner statistics), as in the first minute of a fresh database',
    );
  }
  rows.push(['bare: sign + POST, same client', bareRate.toFixed(0), `${(bare.ms / 1000).toFixed(2)} s`, `${(bare.busy * 100).toFixed(0)}%`, String(bare.failed), 'nothing', every('bare'), '100%', '', '']);
  const first = best(databases.kinds[0]!);
  return [
    `(a) throughput: ${first.deliveries} deliveries to ${THROUGHPUT_ENDPOINTS} endpoints (one receiver each), concurrency ${first.concurrency} ` +
      `(${first.perEndpoint} per endpoint), after ${WARMUP_DELIVERIES} warm-up; best of ${roundCount} alternating rounds`,
    databases.note,
    table(['', 'deliveries/s', 'time', 'event loop busy', 'failed', 'recorded', 'every round, deliveries/s', 'of bare', 'PostgreSQL/SQLite', 'target'], rows),
    ...notes,
    '',
  ];
}

async function benchLatency(tls: Tls): Promise<string[]> {
  const lines: string[] = [];
  // (b) committed event -> receipt at a steady 100 events/s.
  process.stderr.write('(b) latency at 100 events/s ...\n');
  const latencyReceiver = await startReceiver(tls, 'ok');
  const latencyChild = startChild(tls, ['latency', JSON.stringify({ url: latencyReceiver.url('/latency') })]);
  const ready = await latencyChild.next('ready');
  for (const [path, secret] of Object.entries(ready.secrets as Record<string, string>)) latencyReceiver.secrets.set(path, secret);
  latencyChild.send({ type: 'go' });
  const commits = (await latencyChild.next('commits')).commits as Commits;
  latencyChild.send({ type: 'stop' });
  await latencyChild.exited;
  await latencyReceiver.close();
  const committed = commitToReceipt(commits, latencyReceiver);

  // (b) end to end: 202 of the crossing batch -> verified webhook.
  process.stderr.write('(b) end to end from telemetry ...\n');
  const e2eReceiver = await startReceiver(tls, 'ok');
  const warmAccounts = 2;
  const e2eAccounts = warmAccounts + Math.ceil(E2E_SAMPLES / 10);
  const e2eChild = startChild(tls, ['e2e', JSON.stringify({ urlBase: e2eReceiver.url(''), accounts: e2eAccounts })]);
  const e2e = await e2eChild.next('ready');
  const accounts = e2e.accounts as { key: string; path: string; secret: string; projects: string[] }[];
  for (const a of accounts) e2eReceiver.secrets.set(a.path, a.secret);
  const accepted = new Map<string, number>(); // "path project" -> time of the 202
  const crossings = accounts.flatMap((a, i) => a.projects.map((project) => ({ account: a, project, warm: i < warmAccounts })));
  const sends: Promise<void>[] = [];
  const e2eStart = now();
  for (const [i, c] of crossings.entries()) {
    await sleep(e2eStart + (i * 1000) / E2E_RATE - now());
    sends.push(
      fetch(`http://127.0.0.1:${e2e.port}/v1/telemetry/events`, {
        method: 'POST',
        headers: { 'x-api-key': c.account.key, 'content-type': 'application/json' },
        body: JSON.stringify({ events: [{ type: 'call_crash', project_id: c.project }] }),
      }).then(async (res) => {
        const at = now();
        await res.text();
        if (res.status !== 202) throw new Error(`telemetry answered ${res.status}`);
        accepted.set(`${c.account.path} ${c.project}`, at);
      }),
    );
  }
  await Promise.all(sends);
  await sleep(1000);
  e2eChild.send({ type: 'stop' });
  await e2eChild.exited;
  await e2eReceiver.close();
  // Receipts carry the rule's name, which names the project ("Crashes in proj_a_r").
  const e2eLatencies: number[] = [];
  let e2eExpected = 0;
  for (const c of crossings) {
    if (c.warm) continue;
    e2eExpected += 1;
    const acceptedAt = accepted.get(`${c.account.path} ${c.project}`);
    const receipt = e2eReceiver.receipts.find((r) => r.path === c.account.path && r.ruleName === `Crashes in ${c.project}`);
    if (acceptedAt !== undefined && receipt) e2eLatencies.push(receipt.at - acceptedAt);
  }
  const endToEnd = stats(e2eLatencies, e2eExpected);
  lines.push(
    '(b) latency (SQLite), ms p50 / p99 / max',
    table(
      ['path', 'samples', 'p50 / p99 / max', 'target'],
      [
        [`committed alerts.triggered -> received, ${LATENCY_RATE} events/s for ${LATENCY_SECONDS} s`, String(committed.n), fmtStats(committed), p99Verdict(committed, 50)],
        [`202 of the crossing telemetry batch -> verified webhook (${E2E_RATE}/s)`, String(endToEnd.n), fmtStats(endToEnd), p99Verdict(endToEnd, 100)],
        ['Prometheus + Alertmanager, 1 s intervals (issue 4)', '', '1000 / - / 1700', ''],
      ],
    ),
    `    bad signatures: ${latencyReceiver.badSignatures + e2eReceiver.badSignatures}`,
    '',
  );
  return lines;
}

async function benchIsolation(tls: Tls): Promise<string[]> {
  const lines: string[] = [];
  // (c) failure isolation.
  process.stderr.write('(c) failure isolation ...\n');
  const healthy = await startReceiver(tls, 'ok');
  const hanging = await startReceiver(tls, 'hang');
  const isoChild = startChild(tls, ['isolation', JSON.stringify({ healthyBase: healthy.url(''), badUrl: hanging.url('/bad') })]);
  const isoReady = await isoChild.next('ready');
  for (const [path, secret] of Object.entries(isoReady.secrets as Record<string, string>)) healthy.secrets.set(path, secret);
  isoChild.send({ type: 'go' });
  const without = await isoChild.next('commits');
  isoChild.send({ type: 'go' });
  const withBad = await isoChild.next('commits');
  isoChild.send({ type: 'stop' });
  await hanging.close();
  await isoChild.exited;
  await healthy.close();
  const sameWithout = commitToReceipt(without.commits as Commits, healthy, (t) => t === 0);
  const otherWithout = commitToReceipt(without.commits as Commits, healthy, (t) => t === 1);
  const sameWith = commitToReceipt(withBad.commits as Commits, healthy, (t) => t === 0);
  const otherWith = commitToReceipt(withBad.commits as Commits, healthy, (t) => t === 1);
  const badAttempts = (withBad.badAttempts as { error_class: string | null; n: number }[]).map((a) => `${a.n} ${a.error_class ?? 'answered'}`).join(', ');
  lines.push(
    `(c) failure isolation (SQLite): committed -> received at the healthy endpoints, ${ISOLATION_RATE} events/s per account for ${ISOLATION_SECONDS} s, ms p50 / p99 / max`,
    table(
      ['healthy endpoint', 'without the bad endpoint', `with it (hangs; timeout_ms ${BAD_TIMEOUT_MS})`],
      [
        ['same account as the bad one', fmtStats(sameWithout), fmtStats(sameWith)],
        ['another account', fmtStats(otherWithout), fmtStats(otherWith)],
      ],
    ),
    `    bad endpoint: ${badAttempts || 'no'} attempts recorded, ${hanging.requests} requests reached it, ${withBad.badBacklog} deliveries still pending; retry schedule 0,1s,1s,1s,1s,1s`,
    `    bad signatures: ${healthy.badSignatures}`,
    '',
  );
  return lines;
}

/** (c) the per-account bound: another account's latency beside an account whose endpoints all hang. */
async function benchHangingAccount(tls: Tls): Promise<string[]> {
  process.stderr.write('(c) an account whose endpoints all hang ...\n');
  const config = loadConfig({});
  const run = async (accountConcurrency: number) => {
    const healthy = await startReceiver(tls, 'ok');
    const hanging = await startReceiver(tls, 'hang');
    const child = startChild(tls, ['hanging-account', JSON.stringify({ healthyBase: healthy.url(''), badBase: hanging.url(''), accountConcurrency })]);
    const ready = await child.next('ready');
    for (const [path, secret] of Object.entries(ready.secrets as Record<string, string>)) healthy.secrets.set(path, secret);
    child.send({ type: 'go' });
    const without = await child.next('commits');
    child.send({ type: 'go' });
    const withHanging = await child.next('commits');
    child.send({ type: 'stop' });
    await hanging.close();
    await child.exited;
    await healthy.close();
    const all = () => true;
    return { without: commitToReceipt(without.commits as Commits, healthy, all), with: commitToReceipt(withHanging.commits as Commits, healthy, all), hangingRequests: hanging.requests };
  };
  const bounded = await run(config.delivery.perAccountConcurrency);
  const unbounded = await run(config.delivery.concurrency);
  const ratio = (r: { without: Stats; with: Stats }) =>
    r.with.missing > 0 ? `${r.with.missing} never arrived` : `${(r.with.p99 / r.without.p99).toFixed(2)}x`;
  const within = (r: { without: Stats; with: Stats }) => verdict(r.with.missing === 0 && r.with.p99 <= 2 * r.without.p99);
  return [
    `(c) an account whose 10 endpoints all hang (SQLite; timeout_ms ${HANGING_TIMEOUT_MS}, ${HANGING_RATE} events/s = ${HANGING_RATE * 10} deliveries/s): ` +
      `two other accounts' healthy endpoints, ${ISOLATION_RATE} events/s each for ${ISOLATION_SECONDS} s, committed -> received, ms p50 / p99 / max`,
    table(
      ['per-account bound', 'without the hanging account', 'with it', 'p99 with / without', 'within 2x'],
      [
        [`${config.delivery.perAccountConcurrency} of ${config.delivery.concurrency} slots (default)`, fmtStats(bounded.without), fmtStats(bounded.with), ratio(bounded), within(bounded)],
        [`none (${config.delivery.concurrency} of ${config.delivery.concurrency})`, fmtStats(unbounded.without), fmtStats(unbounded.with), ratio(unbounded), within(unbounded)],
      ],
    ),
    `    requests that reached the hanging endpoints: ${bounded.hangingRequests} with the bound, ${unbounded.hangingRequests} without`,
    '',
  ];
}

async function main(): Promise<void> {
  const startedAt = Date.now();
  // BENCH_ONLY=a,b,c runs some of the parts.
  const only = new Set((process.env.BENCH_ONLY ?? 'a,b,c').split(','));
  const tls = makeTls();
  const lines: string[] = [];
  try {
    if (only.has('a')) lines.push(...(await benchThroughput(tls)));
    if (only.has('b')) lines.push(...(await benchLatency(tls)));
    if (only.has('c')) lines.push(...(await benchIsolation(tls)));
    if (only.has('c')) lines.push(...(await benchHangingAccount(tls)));
  } catch (error) {
    for (const child of children) child.kill('SIGKILL');
    throw error;
  } finally {
    rmSync(tls.dir, { recursive: true, force: true });
  }
  console.log(`\nnode ${process.version}, ${cpus().length} cores; all traffic on 127.0.0.1; ${((Date.now() - startedAt) / 1000).toFixed(0)} s in all\n`);
  console.log(lines.join('\n'));
}

if (process.argv[2] === 'child') {
  process.on('message', (m: Message) => {
    const index = waiting.findIndex((w) => w(m));
    if (index >= 0) waiting.splice(index, 1);
    else inbox.push(m);
  });
  const mode = process.argv[3];
  const args = JSON.parse(process.argv[4] ?? '{}') as {
    urls: string[];
    count: number;
    url: string;
    urlBase: string;
    accounts: number;
    healthyBase: string;
    badUrl: string;
    badBase: string;
    accountConcurrency: number;
    databaseUrl: string;
  };
  if (mode === 'ours') send(await childOurs(args.urls, args.count, args.databaseUrl));
  else if (mode === 'bare') send(await childBare(args.urls, args.count));
  else if (mode === 'latency') await childLatency(args.url);
  else if (mode === 'e2e') await childEndToEnd(args.urlBase, args.accounts);
  else if (mode === 'isolation') await childIsolation(args.healthyBase, args.badUrl);
  else if (mode === 'hanging-account') await childHangingAccount(args.healthyBase, args.badBase, args.accountConcurrency);
  else throw new Error(`unknown bench child mode ${mode}`);
  process.disconnect();
} else {
  await main();
}
