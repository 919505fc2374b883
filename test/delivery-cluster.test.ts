/**
 * Delivery claims shared by several instances on one database (the graphile-worker model):
 * a claim has an owner, only its owner changes the delivery while the claim stands, the
 * concurrency limits hold over all instances together, and the claims of a dead instance
 * come back at once (its cluster_instances row expired), not when their lease passes.
 *
 * Each test has two instances on a fresh database, with a store each: on PostgreSQL two
 * separate connection pools, so their claims really run at the same time. On SQLite one
 * store serves both (one process per file, its transactions one at a time: a second
 * connection in the same process would wait for the first synchronously, and never get it).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql, type Kysely } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { toIso } from '../src/domain/clock.js';
import { ID_PREFIX, newId } from '../src/domain/ids.js';
import { NO_RESULT_ERROR, type AttemptRecord, type ClaimedDelivery, type ClaimRoom } from '../src/domain/ports/deliveries-repository.js';
import type { AttemptResult, WebhookClient, WebhookRequest } from '../src/domain/ports/webhook-client.js';
import { createDeliveryWorker, type DeliveryWorker } from '../src/delivery/worker.js';
import { createLogger } from '../src/logger.js';
import { insertDeliveriesForEvent } from '../src/store/deliveries-repository.js';
import type { Database } from '../src/store/schema.js';
import { openStore, type Store } from '../src/store/store.js';
import { freshDatabaseUrl, locationOf, onPostgres, testDatabaseKind } from './helpers/database.js';

const MAX_ATTEMPTS = 3;
const LEASE_MS = 120_000;

/** The database's clock, epoch ms: instance rows expire by it. */
const DB_NOW = onPostgres ? sql<number>`(floor(extract(epoch from clock_timestamp()) * 1000))::bigint` : sql<number>`cast(unixepoch('subsec') * 1000 as integer)`;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** The stores of instance A and instance B on one fresh database (see above). */
async function twoInstances(): Promise<{ a: Store; b: Store }> {
  const dir = mkdtempSync(join(tmpdir(), 'alerts-cluster-'));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  const url = await freshDatabaseUrl(dir);
  const a = await openStore({ location: locationOf(url), deliveryAttempts: MAX_ATTEMPTS });
  cleanups.push(() => a.close());
  if (!onPostgres) return { a, b: a };
  const b = await openStore({ location: locationOf(url), deliveryAttempts: MAX_ATTEMPTS });
  cleanups.push(() => b.close());
  return { a, b };
}

/** A running instance: its row expires `ttlMs` from now by the database's clock. */
async function instanceRow(db: Kysely<Database>, id: string, ttlMs = 60_000): Promise<void> {
  await sql`insert into cluster_instances (instance_id, pid, hostname, address, started_at, heartbeat_at, expires_at, stopping)
            values (${id}, ${process.pid}, 'test', null, ${toIso(Date.now())}, ${DB_NOW}, ${DB_NOW} + ${ttlMs}, 0)`.execute(db);
}

/** The instance stops renewing: its row's expiry passes (by the database's clock). */
async function dies(db: Kysely<Database>, id: string): Promise<void> {
  await sql`update cluster_instances set expires_at = ${DB_NOW} - 1 where instance_id = ${id}`.execute(db);
}

async function renews(db: Kysely<Database>, id: string): Promise<void> {
  await sql`update cluster_instances set expires_at = ${DB_NOW} + 60000 where instance_id = ${id}`.execute(db);
}

interface Seeded {
  accountId: string;
  endpointIds: string[];
  deliveryIds: string[];
}

/** One account with `endpoints` endpoints and `events` events: one delivery per (event, endpoint), all due at `now`. */
async function seed(store: Store, endpoints: number, events: number, now: number): Promise<Seeded> {
  const account = await store.accounts.ensure('acme', toIso(now));
  const endpointIds: string[] = [];
  for (let i = 0; i < endpoints; i++) {
    const endpoint = await store.webhookEndpoints.insertWithinLimit(
      account.id,
      { id: newId(ID_PREFIX.webhookEndpoint), name: `ep${i}`, url: `https://ep${i}.example.test/in`, event_types: ['alerts.triggered'], headers: {}, timeout_ms: 5000, enabled: true, created_at: toIso(now) },
      'whsec_test',
      100,
    );
    if (endpoint === 'limit_exceeded') throw new Error('endpoint limit');
    endpointIds.push(endpoint.id);
  }
  for (let i = 0; i < events; i++) {
    await store.db.transaction().execute(async (trx) => {
      const id = newId(ID_PREFIX.event);
      const event = { id, account_id: account.id, rule_id: 'rul_test', event_type: 'alerts.triggered' as const, payload: JSON.stringify({ id, n: i }), created_at: toIso(now) };
      await trx.insertInto('alert_events').values(event).execute();
      await insertDeliveriesForEvent(trx, event, MAX_ATTEMPTS, now);
    });
  }
  const deliveryIds = (await store.db.selectFrom('webhook_deliveries').select('id').orderBy('seq').execute()).map((r) => r.id);
  return { accountId: account.id, endpointIds, deliveryIds };
}

/** A worker with room for `local` everywhere, and the configured limits. */
function room(perEndpoint: number, perAccount?: number, local = 100): ClaimRoom {
  return { forEndpoint: () => local, forAccount: () => local, fullEndpoints: [], fullAccounts: [], limits: { perEndpoint, perAccount } };
}

function attemptOf(delivery: ClaimedDelivery, statusCode: number | null = 200): AttemptRecord {
  return { delivery_id: delivery.id, attempt: delivery.attempts, started_at: toIso(Date.now()), duration_ms: 1, status_code: statusCode, error_class: null, error: null, response_body: null };
}

async function row(store: Store, id: string) {
  return store.db
    .selectFrom('webhook_deliveries')
    .select(['status', 'attempts', 'locked_by', 'locked_until', 'next_attempt_at', 'last_error'])
    .where('id', '=', id)
    .executeTakeFirstOrThrow();
}

async function inFlightCounts(store: Store): Promise<{ byEndpoint: Map<string, number>; total: number }> {
  const rows = await store.db.selectFrom('webhook_deliveries').select('endpoint_id').where('status', '=', 'in_flight').execute();
  const byEndpoint = new Map<string, number>();
  for (const { endpoint_id } of rows) byEndpoint.set(endpoint_id, (byEndpoint.get(endpoint_id) ?? 0) + 1);
  return { byEndpoint, total: rows.length };
}

describe(`delivery claims shared by two instances (${testDatabaseKind})`, () => {
  it('never give one delivery to both, and never hold more than the per-endpoint and per-account limits together', { timeout: 60_000 }, async () => {
    const { a, b } = await twoInstances();
    await instanceRow(a.db, 'A');
    await instanceRow(a.db, 'B');
    const now = Date.now();
    const { deliveryIds } = await seed(a, 2, 30, now);
    expect(deliveryIds).toHaveLength(60);

    const claimedOnce = new Set<string>();
    let saturated = 0;
    for (let round = 0; claimedOnce.size < deliveryIds.length; round++) {
      expect(round, 'claims keep making progress').toBeLessThan(100);
      // Four claims at once, two per instance, each with room for 10 on its own.
      const claimers = [
        { store: a, owner: 'A' },
        { store: a, owner: 'A' },
        { store: b, owner: 'B' },
        { store: b, owner: 'B' },
      ];
      const claims = await Promise.all(claimers.map(({ store, owner }) => store.deliveries.claimDue(owner, now, 10, LEASE_MS, room(3, 5))));
      const counts = await inFlightCounts(a);
      for (const n of counts.byEndpoint.values()) expect(n).toBeLessThanOrEqual(3);
      expect(counts.total).toBeLessThanOrEqual(5);
      if (counts.total === 5) saturated += 1;
      const claimed = claims.flat();
      expect(claimed.length).toBe(counts.total);
      for (const delivery of claimed) {
        expect(claimedOnce.has(delivery.id), `${delivery.id} claimed twice`).toBe(false);
        claimedOnce.add(delivery.id);
      }
      // Each instance finishes what it claimed, under its own claim.
      await Promise.all(
        claims.map((list, i) => Promise.all(list.map((d) => claimers[i]!.store.deliveries.recordAttempt(d, attemptOf(d), { kind: 'delivered' }, toIso(now))))),
      );
    }
    // The limits bound what both held together, round after round.
    expect(saturated).toBeGreaterThan(5);
    const final = await a.db.selectFrom('webhook_deliveries').select(['status', 'attempts', 'locked_by']).execute();
    expect(final.every((d) => d.status === 'delivered' && d.attempts === 1 && d.locked_by === null)).toBe(true);
    const attempts = await a.db.selectFrom('webhook_attempts').select('delivery_id').execute();
    expect(attempts).toHaveLength(60);
  });

  it('keep their workers within the per-endpoint and per-account limits together, each delivery sent once', { timeout: 60_000 }, async () => {
    const { a, b } = await twoInstances();
    await instanceRow(a.db, 'A');
    await instanceRow(a.db, 'B');
    const { deliveryIds } = await seed(a, 2, 12, Date.now());

    // A receiver shared by both workers: how many requests each endpoint has open at once.
    const open = new Map<string, number>();
    let maxPerEndpoint = 0;
    let maxTotal = 0;
    let total = 0;
    const sent: string[] = [];
    const client: WebhookClient = {
      async send(request: WebhookRequest): Promise<AttemptResult> {
        const host = new URL(request.url).host;
        open.set(host, (open.get(host) ?? 0) + 1);
        total += 1;
        maxPerEndpoint = Math.max(maxPerEndpoint, open.get(host)!);
        maxTotal = Math.max(maxTotal, total);
        sent.push(`${host} ${request.body}`);
        await new Promise((resolve) => setTimeout(resolve, 15));
        open.set(host, open.get(host)! - 1);
        total -= 1;
        return { statusCode: 200, errorClass: null, error: null, responseBody: '', durationMs: 15 };
      },
      async close() {},
    };
    const worker = (store: Store, instanceId: string): DeliveryWorker =>
      createDeliveryWorker({
        store,
        instanceId,
        clock: { now: () => Date.now() },
        logger: createLogger('silent'),
        client,
        retrySchedule: [0, 0, 0],
        concurrency: 8,
        perEndpointConcurrency: 2,
        perAccountConcurrency: 3,
        pollIntervalMs: 1000,
        stopGraceMs: 100,
        autoStart: false,
      });
    const workers = [worker(a, 'A'), worker(b, 'B')];
    for (let round = 0; ; round++) {
      expect(round, 'the workers keep making progress').toBeLessThan(200);
      const left = await a.db.selectFrom('webhook_deliveries').select('id').where('status', '!=', 'delivered').execute();
      if (left.length === 0) break;
      await Promise.all(workers.map((w) => w.drain()));
    }
    await Promise.all(workers.map((w) => w.stop()));
    expect(maxPerEndpoint).toBeLessThanOrEqual(2);
    expect(maxTotal).toBeLessThanOrEqual(3);
    expect(sent).toHaveLength(deliveryIds.length);
    expect(new Set(sent).size).toBe(deliveryIds.length);
  });

  it('let only the owner of a claim release it or record its outcome', async () => {
    const { a, b } = await twoInstances();
    await instanceRow(a.db, 'A');
    await instanceRow(a.db, 'B');
    const now = Date.now();
    const {
      deliveryIds: [id],
    } = await seed(a, 1, 1, now);
    const [claimed] = await a.deliveries.claimDue('A', now, 10, LEASE_MS, room(8));
    expect(claimed).toMatchObject({ id, locked_by: 'A', attempts: 1, status: 'in_flight' });
    const held = { status: 'in_flight', attempts: 1, locked_by: 'A', locked_until: now + LEASE_MS };

    await b.deliveries.release('B', [id!], now, toIso(now));
    expect(await row(a, id!)).toMatchObject(held);
    // B's attempt row is kept (a receiver saw it); the delivery's state stays A's.
    await b.deliveries.recordAttempt({ ...claimed!, locked_by: 'B' }, attemptOf(claimed!), { kind: 'delivered' }, toIso(now));
    expect(await row(a, id!)).toMatchObject(held);
    await b.deliveries.recordAttempt({ ...claimed!, locked_by: 'B' }, attemptOf(claimed!, 500), { kind: 'failed', error: 'HTTP 500' }, toIso(now));
    expect(await row(a, id!)).toMatchObject(held);

    // Its owner can.
    await a.deliveries.recordAttempt(claimed!, attemptOf(claimed!, 503), { kind: 'retry', nextAttemptAt: now + 1000, error: 'HTTP 503' }, toIso(now));
    expect(await row(a, id!)).toMatchObject({ status: 'pending', attempts: 1, locked_by: null, locked_until: null, next_attempt_at: now + 1000, last_error: 'HTTP 503' });
    const [again] = await a.deliveries.claimDue('A', now + 1000, 10, LEASE_MS, room(8));
    await a.deliveries.release('A', [again!.id], now + 1000, toIso(now + 1000));
    // Released: due now, the attempt its claim counted given back.
    expect(await row(a, id!)).toMatchObject({ status: 'pending', attempts: 1, locked_by: null, locked_until: null, next_attempt_at: now + 1000 });
  });

  it('let an instance whose claim was reaped and taken again change nothing of the newer claim', async () => {
    const { a, b } = await twoInstances();
    await instanceRow(a.db, 'A');
    await instanceRow(a.db, 'B');
    const now = Date.now();
    const {
      deliveryIds: [id],
    } = await seed(a, 1, 1, now);
    const [byA] = await a.deliveries.claimDue('A', now, 10, LEASE_MS, room(8));
    // A stalls: its heartbeat lapses, B reaps its claim and claims the delivery again.
    await dies(a.db, 'A');
    expect(await b.deliveries.reapExpired('B', now, toIso(now))).toEqual({ released: 1, failed: [] });
    const [byB] = await b.deliveries.claimDue('B', now, 10, LEASE_MS, room(8));
    expect(byB).toMatchObject({ id, locked_by: 'B', attempts: 2 });

    // A wakes up and records its (older) attempt's outcome, then releases: nothing changes.
    await a.deliveries.recordAttempt(byA!, attemptOf(byA!), { kind: 'delivered' }, toIso(now));
    await a.deliveries.release('A', [id!], now, toIso(now));
    expect(await row(a, id!)).toMatchObject({ status: 'in_flight', attempts: 2, locked_by: 'B' });

    // Even the same owner cannot overwrite a newer claim of its own with an older attempt.
    await b.deliveries.recordAttempt(byB!, attemptOf(byB!, 503), { kind: 'retry', nextAttemptAt: now, error: 'HTTP 503' }, toIso(now));
    await renews(a.db, 'A');
    const [byAAgain] = await a.deliveries.claimDue('A', now, 10, LEASE_MS, room(8));
    expect(byAAgain).toMatchObject({ locked_by: 'A', attempts: 3 });
    await a.deliveries.recordAttempt(byA!, attemptOf(byA!, 500), { kind: 'failed', error: 'HTTP 500' }, toIso(now));
    expect(await row(a, id!)).toMatchObject({ status: 'in_flight', attempts: 3, locked_by: 'A' });
    await a.deliveries.recordAttempt(byAAgain!, attemptOf(byAAgain!), { kind: 'delivered' }, toIso(now));
    expect(await row(a, id!)).toMatchObject({ status: 'delivered', attempts: 3, locked_by: null });
    // Every attempt a receiver saw is in the history, under its own number.
    const history = await a.deliveries.attemptsOf([id!]);
    expect(history.map((h) => [h.attempt, h.status_code])).toEqual([
      [1, 200],
      [2, 503],
      [1, 500],
      [3, 200],
    ]);
  });

  it('bring back the claims of an instance whose row expired at once, not after the lease, the attempt counted, and fail them after the last attempt', async () => {
    const { a, b } = await twoInstances();
    for (const id of ['A', 'B', 'C', 'D']) await instanceRow(a.db, id);
    const now = Date.now();
    const {
      deliveryIds: [id],
    } = await seed(a, 1, 1, now);
    await a.deliveries.claimDue('A', now, 10, LEASE_MS, room(8));
    // A live instance's claim within its lease is left alone.
    expect(await b.deliveries.reapExpired('B', now, toIso(now))).toEqual({ released: 0, failed: [] });
    expect(await row(a, id!)).toMatchObject({ status: 'in_flight', locked_by: 'A' });

    // A dies: its claim's lease has two minutes to run, but B takes it back now.
    await dies(a.db, 'A');
    expect(await b.deliveries.reapExpired('B', now + 1, toIso(now + 1))).toEqual({ released: 1, failed: [] });
    expect(await row(a, id!)).toMatchObject({ status: 'pending', attempts: 1, locked_by: null, locked_until: null, next_attempt_at: now + 1 });

    // C claims attempt 2 and dies too; D claims the last attempt, 3, and dies.
    await a.deliveries.claimDue('C', now + 1, 10, LEASE_MS, room(8));
    await dies(a.db, 'C');
    expect((await b.deliveries.reapExpired('B', now + 2, toIso(now + 2))).released).toBe(1);
    const [last] = await a.deliveries.claimDue('D', now + 2, 10, LEASE_MS, room(8));
    expect(last).toMatchObject({ attempts: 3, max_attempts: 3 });
    await dies(a.db, 'D');
    const reaped = await b.deliveries.reapExpired('B', now + 3, toIso(now + 3));
    expect(reaped.released).toBe(0);
    expect(reaped.failed).toEqual([expect.objectContaining({ id, status: 'failed', attempts: 3, last_error: NO_RESULT_ERROR, next_attempt_at: null })]);
    expect(await row(a, id!)).toMatchObject({ status: 'failed', attempts: 3, locked_by: null, locked_until: null, last_error: NO_RESULT_ERROR });
    // Nothing was recorded: no attempt ever had a result.
    expect(await a.deliveries.attemptsOf([id!])).toEqual([]);
  });

  it('bring back a claim whose owner has no row at all', async () => {
    const { a, b } = await twoInstances();
    await instanceRow(a.db, 'B');
    const now = Date.now();
    const {
      deliveryIds: [id],
    } = await seed(a, 1, 1, now);
    await a.deliveries.claimDue('never-registered', now, 10, LEASE_MS, room(8));
    expect(await b.deliveries.reapExpired('B', now, toIso(now))).toEqual({ released: 1, failed: [] });
    expect(await row(a, id!)).toMatchObject({ status: 'pending', attempts: 1 });
  });

  it('bring back a claim past its locked_until even when its owner is alive, but never one its reaper still holds', async () => {
    const { a, b } = await twoInstances();
    await instanceRow(a.db, 'A');
    await instanceRow(a.db, 'B');
    const now = Date.now();
    const {
      deliveryIds: [first, second, third],
    } = await seed(a, 1, 3, now);
    await a.deliveries.claimDue('A', now, 1, 1000, room(8));
    expect(await b.deliveries.reapExpired('B', now + 1000, toIso(now + 1000))).toEqual({ released: 0, failed: [] });
    // A stalled past its lease: B takes the claim back although A's heartbeat goes on.
    expect(await b.deliveries.reapExpired('B', now + 1001, toIso(now + 1001))).toEqual({ released: 1, failed: [] });
    expect(await row(a, first!)).toMatchObject({ status: 'pending', attempts: 1, locked_by: null, next_attempt_at: now + 1001 });

    // An instance's own claims: never while it holds them, else by their lease only (even
    // when the database has taken it for dead, it knows it is alive).
    const own = await b.deliveries.claimDue('B', now + 1001, 2, 1000, room(8));
    expect(own.map((d) => d.id)).toEqual([second, third]);
    await dies(a.db, 'B');
    expect(await b.deliveries.reapExpired('B', now + 1001, toIso(now + 1001))).toEqual({ released: 0, failed: [] });
    expect(await b.deliveries.reapExpired('B', now + 2002, toIso(now + 2002), [second!])).toEqual({ released: 1, failed: [] });
    expect(await row(a, second!)).toMatchObject({ status: 'in_flight', locked_by: 'B' });
    expect(await row(a, third!)).toMatchObject({ status: 'pending', attempts: 1 });
    // Another instance reaps B's claims now that B's row expired.
    expect(await a.deliveries.reapExpired('A', now + 1001, toIso(now + 1001))).toEqual({ released: 1, failed: [] });
    expect(await row(a, second!)).toMatchObject({ status: 'pending', attempts: 1, locked_by: null });
    expect(await row(a, first!)).toMatchObject({ status: 'pending', attempts: 1 });
  });

  it('have a worker start by reaping the claims of dead instances, leaving those of live ones, and send them again at once', async () => {
    const { a, b } = await twoInstances();
    await instanceRow(a.db, 'A');
    await instanceRow(a.db, 'B');
    await instanceRow(a.db, 'dead');
    const now = Date.now();
    const {
      deliveryIds: [live, orphaned],
    } = await seed(a, 1, 2, now);
    await a.deliveries.claimDue('A', now, 1, LEASE_MS, room(8));
    await a.deliveries.claimDue('dead', now, 1, LEASE_MS, room(8));
    await dies(a.db, 'dead');

    const sent: string[] = [];
    const worker = createDeliveryWorker({
      store: b,
      instanceId: 'B',
      clock: { now: () => Date.now() },
      logger: createLogger('silent'),
      client: {
        async send(request) {
          sent.push(request.body);
          return { statusCode: 200, errorClass: null, error: null, responseBody: '', durationMs: 1 };
        },
        async close() {},
      },
      retrySchedule: [0, 0, 0],
      concurrency: 8,
      perEndpointConcurrency: 8,
      pollIntervalMs: 1000,
      stopGraceMs: 100,
      autoStart: false,
    });
    await worker.start();
    expect(await row(a, live!)).toMatchObject({ status: 'in_flight', locked_by: 'A', attempts: 1 });
    expect(await row(a, orphaned!)).toMatchObject({ status: 'pending', locked_by: null, attempts: 1 });
    await worker.drain();
    await worker.stop();
    expect(sent).toHaveLength(1);
    expect(await row(a, orphaned!)).toMatchObject({ status: 'delivered', attempts: 2 });
    expect((await a.deliveries.attemptsOf([orphaned!])).map((h) => h.attempt)).toEqual([2]);
    expect(await row(a, live!)).toMatchObject({ status: 'in_flight', locked_by: 'A' });
  });
});
