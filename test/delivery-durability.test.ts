/**
 * Durability of webhook delivery: the service is killed with SIGKILL while 1,000 deliveries
 * are in flight, restarted on the same database, and every event still reaches every
 * endpoint at least once, with its id and a valid signature.
 *
 * 10 accounts × 10 endpoints × 10 rules: one telemetry batch per account makes its 10 rules
 * fire, so 100 events × 10 endpoints = 1,000 deliveries. Each endpoint is its own HTTPS
 * receiver (its own origin, so connection pools never queue) that holds every request
 * 2-3 s, and the concurrency bounds are raised so that all 1,000 are sent at once.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { createApiKeysService } from '../src/domain/api-keys-service.js';
import { systemClock } from '../src/domain/clock.js';
import type { Database } from '../src/store/schema.js';
import { openStore } from '../src/store/store.js';
import { killAllChildren, startCliServer, type CliServer } from './helpers/cli-process.js';
import { databaseUrlFor, dropDatabaseFor, inspectDatabase, locationOf } from './helpers/database.js';
import { startHttpsReceiver, testTls, type HttpsReceiver, type ReceivedRequest } from './helpers/https-receiver.js';

const ACCOUNTS = 10;
const ENDPOINTS_PER_ACCOUNT = 10;
const RULES_PER_ACCOUNT = 10;
const TOTAL_DELIVERIES = ACCOUNTS * ENDPOINTS_PER_ACCOUNT * RULES_PER_ACCOUNT;
// Long enough that, even on a loaded machine, most deliveries are still unanswered when the kill lands.
const HOLD_MIN_MS = 2000;
const HOLD_SPREAD_MS = 1000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Endpoint {
  id: string;
  secret: string;
}

interface Arrival extends ReceivedRequest {
  endpoint: Endpoint;
  /** 1 before the kill, 2 after the restart. */
  run: 1 | 2;
}

/** The documented algorithm, written independently of src/domain/webhook-signing.ts. */
function expectedSignature(secret: string, timestamp: string, rawBody: Buffer): string {
  const mac = createHmac('sha256', Buffer.from(secret, 'utf8'));
  mac.update(Buffer.from(`${timestamp}.`, 'utf8'));
  mac.update(rawBody);
  return mac.digest('hex');
}

function signatureVerifies(arrival: Arrival): boolean {
  const timestamp = arrival.headers['x-polyai-timestamp'];
  const signature = arrival.headers['x-polyai-signature'];
  if (typeof timestamp !== 'string' || typeof signature !== 'string' || !/^\d+$/.test(timestamp)) return false;
  if (Math.abs(Number(timestamp) - arrival.receivedAt / 1000) > 300) return false;
  const expected = Buffer.from(expectedSignature(arrival.endpoint.secret, timestamp, arrival.body), 'utf8');
  const actual = Buffer.from(signature, 'utf8');
  return /^[0-9a-f]{64}$/.test(signature) && actual.length === expected.length && timingSafeEqual(actual, expected);
}

async function statusCounts(db: Kysely<Database>): Promise<Record<string, number>> {
  const rows = await db
    .selectFrom('webhook_deliveries')
    .select((eb) => ['status', eb.fn.countAll<number>().as('n')])
    .groupBy('status')
    .execute();
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

async function waitForCounts(db: Kysely<Database>, done: (counts: Record<string, number>) => boolean, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  let counts: Record<string, number> = {};
  while (Date.now() < deadline) {
    counts = await statusCounts(db);
    if (done(counts)) return counts;
    await sleep(25);
  }
  throw new Error(`timed out waiting for ${what}; deliveries by status: ${JSON.stringify(counts)}`);
}

describe('webhook delivery survives kill -9', () => {
  const dir = mkdtempSync(join(tmpdir(), 'alerts-durability-'));
  const receivers: HttpsReceiver[] = [];
  /** Reads rows beside the service, through a connection of its own. */
  let inspect: Kysely<Database> | undefined;

  afterAll(async () => {
    await killAllChildren();
    await Promise.all(receivers.map((r) => r.close()));
    await inspect?.destroy();
    rmSync(dir, { recursive: true, force: true });
    await dropDatabaseFor(dir);
  });

  it(`delivers every event at least once after SIGKILL with ${TOTAL_DELIVERIES} deliveries in flight`, { timeout: 90_000 }, async () => {
    const started = Date.now();
    const dbPath = await databaseUrlFor(dir);
    const env = {
      DATABASE_URL: dbPath,
      LOG_LEVEL: 'warn',
      NODE_EXTRA_CA_CERTS: testTls().caPath,
      ALERTS_WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32',
      ALERTS_SECRET_KEY: 'durability-test-secret-key-0123456789abcdef',
      // Nothing should fail; if something does, it is retried within seconds, not minutes.
      ALERTS_RETRY_SCHEDULE: '0,1s,2s,2s,2s,2s',
      ALERTS_DELIVERY_CONCURRENCY: '1024',
      ALERTS_DELIVERY_ENDPOINT_CONCURRENCY: '16',
      ALERTS_DELIVERY_ACCOUNT_CONCURRENCY: '1024',
      ALERTS_SHUTDOWN_TIMEOUT_MS: '10000',
    };

    // API keys of the 10 accounts, written to the database before the service starts.
    const store = await openStore({ location: locationOf(dbPath), secretKey: env.ALERTS_SECRET_KEY });
    const keysService = createApiKeysService({ accounts: store.accounts, apiKeys: store.apiKeys, clock: systemClock });
    const keys: string[] = [];
    for (let a = 0; a < ACCOUNTS; a++) keys.push((await keysService.create(`durability-${a}`)).key);
    await store.close();
    const db = (inspect = inspectDatabase(dbPath));

    let run: 1 | 2 = 1;
    const arrivals: Arrival[] = [];
    const endpointsByPort = new Map<number, Endpoint>();
    for (let i = 0; i < ACCOUNTS * ENDPOINTS_PER_ACCOUNT; i++) {
      const receiver = await startHttpsReceiver();
      receivers.push(receiver);
      // Every request is held 2-3 s, so that at any moment many are in flight.
      receiver.setDefault((request) => {
        arrivals.push({ ...request, endpoint: endpointsByPort.get(receiver.port)!, run });
        return { status: 200, body: 'ok', delayMs: HOLD_MIN_MS + Math.random() * HOLD_SPREAD_MS };
      });
    }

    // Set-up runs with sending paused: all 1,000 deliveries are recorded before the first is
    // sent. (Ingesting while 1,000 attempts are under way is slow enough on PostgreSQL, on a
    // loaded machine, that the first attempts were answered before the last were recorded.)
    let server: CliServer = await startCliServer({ env: { ...env, ALERTS_DELIVERY_WORKER: 'off' }, cwd: dir });
    const api = async (key: string, method: string, path: string, body?: unknown) => {
      const response = await fetch(server.baseUrl + path, {
        method,
        headers: { 'x-api-key': key, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await response.text();
      if (response.status >= 300) throw new Error(`${method} ${path}: ${response.status} ${text}`);
      return JSON.parse(text) as Record<string, any>;
    };

    await Promise.all(
      keys.map(async (key, a) => {
        for (let e = 0; e < ENDPOINTS_PER_ACCOUNT; e++) {
          const receiver = receivers[a * ENDPOINTS_PER_ACCOUNT + e]!;
          const created = await api(key, 'POST', '/v1/webhook-endpoints', {
            name: `durability ${a}/${e}`,
            url: receiver.url,
            event_types: ['alerts.triggered'],
            timeout_ms: 15_000,
          });
          endpointsByPort.set(receiver.port, { id: created.id, secret: created.signing_secret });
        }
        for (let r = 0; r < RULES_PER_ACCOUNT; r++) {
          const rule = await api(key, 'POST', '/v1/alert-rules', {
            name: `calls seen #${r}`,
            metric: 'call_volume',
            operator: '>',
            threshold_value: 0,
            window_duration: '60m',
          });
          expect(rule.current_state).not.toBe('alert');
        }
      }),
    );

    // One call per account: all its rules fire; the 202 comes after events and deliveries are committed.
    await Promise.all(keys.map((key) => api(key, 'POST', '/v1/telemetry/events', { events: [{ type: 'call' }] })));
    expect(await statusCounts(db)).toEqual({ pending: TOTAL_DELIVERIES });
    expect((await server.stop('SIGTERM')).code).toBe(0);
    expect(arrivals).toHaveLength(0);

    // Sending on: the worker claims all 1,000 at once. Let the first wave get going, then
    // kill the process mid-flight.
    server = await startCliServer({ env, cwd: dir });
    await waitForCounts(db, (c) => (c.delivered ?? 0) >= 100, 30_000, 'the first 100 deliveries');
    server.child.kill('SIGKILL');
    const killed = await server.exited;
    expect(killed.signal).toBe('SIGKILL');
    const arrivalsBeforeKill = arrivals.length;

    const atKill = await statusCounts(db);
    const inFlightAtKill = await db.selectFrom('webhook_deliveries').select(['endpoint_id', 'event_id']).where('status', '=', 'in_flight').execute();
    const total = Object.values(atKill).reduce((sum, n) => sum + n, 0);
    expect(total).toBe(TOTAL_DELIVERIES);
    // The kill really happened mid-flight: some done, many claimed and unanswered.
    expect(atKill.delivered ?? 0).toBeGreaterThan(0);
    expect(atKill.delivered ?? 0).toBeLessThan(TOTAL_DELIVERIES);
    expect(inFlightAtKill.length).toBeGreaterThan(TOTAL_DELIVERIES / 2);

    run = 2;
    server = await startCliServer({ env, cwd: dir });
    await waitForCounts(db, (c) => c.delivered === TOTAL_DELIVERIES, 40_000, 'every delivery to be delivered after the restart');
    const stopped = await server.stop('SIGTERM');
    expect(stopped.code).toBe(0);
    // Every claim of the killed process came back in one reap: at start-up (SQLite: the new
    // server evicts its predecessor's instance row), or once that row expired (PostgreSQL).
    expect(server.stdout()).toContain(`"released":${inFlightAtKill.length}`);

    // Ground truth from the database, read after the service stopped.
    const events = await db.selectFrom('alert_events').select(['id', 'payload']).execute();
    const deliveries = await db.selectFrom('webhook_deliveries').select(['endpoint_id', 'event_id', 'status']).execute();
    const attemptsAfterRestart = await db
      .selectFrom('webhook_attempts')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();

    expect(events).toHaveLength(ACCOUNTS * RULES_PER_ACCOUNT);
    expect(deliveries).toHaveLength(TOTAL_DELIVERIES);
    expect(deliveries.every((d) => d.status === 'delivered')).toBe(true);
    expect(attemptsAfterRestart.n).toBeGreaterThanOrEqual(TOTAL_DELIVERIES);

    // Every request: a known event id in the header, the same id in the body, the stored body
    // byte for byte, and a signature that verifies with the endpoint's secret.
    const payloads = new Map(events.map((e) => [e.id, e.payload]));
    const received = new Set<string>();
    const receivedAfterRestart = new Set<string>();
    const badSignatures: string[] = [];
    for (const arrival of arrivals) {
      const eventId = arrival.headers['x-polyai-event-id'];
      expect(typeof eventId).toBe('string');
      expect(arrival.method).toBe('POST');
      expect(arrival.headers['content-type']).toBe('application/json');
      expect(payloads.has(eventId as string)).toBe(true);
      expect(arrival.body.toString('utf8')).toBe(payloads.get(eventId as string));
      const body = JSON.parse(arrival.body.toString('utf8')) as { id: string; event_type: string };
      expect(body.id).toBe(eventId);
      expect(body.event_type).toBe('alerts.triggered');
      if (!signatureVerifies(arrival)) badSignatures.push(`${arrival.endpoint.id}/${String(eventId)}`);
      received.add(`${arrival.endpoint.id}/${String(eventId)}`);
      if (arrival.run === 2) receivedAfterRestart.add(`${arrival.endpoint.id}/${String(eventId)}`);
    }
    expect(badSignatures).toEqual([]);

    // At least once for every (event, endpoint), and every event id seen.
    const missing = deliveries.map((d) => `${d.endpoint_id}/${d.event_id}`).filter((pair) => !received.has(pair));
    expect(missing).toEqual([]);
    const seenEventIds = new Set(arrivals.map((a) => a.headers['x-polyai-event-id'] as string));
    expect([...payloads.keys()].filter((id) => !seenEventIds.has(id))).toEqual([]);
    // What the killed process held was sent again by the new one.
    const notResent = inFlightAtKill.map((d) => `${d.endpoint_id}/${d.event_id}`).filter((pair) => !receivedAfterRestart.has(pair));
    expect(notResent).toEqual([]);

    console.log(
      `durability: ${TOTAL_DELIVERIES} deliveries; killed with ${JSON.stringify(atKill)} after ${arrivalsBeforeKill} arrivals; ` +
        `${arrivals.length} requests in all (${arrivals.length - TOTAL_DELIVERIES} duplicates); ${Date.now() - started} ms`,
    );
  });
});
