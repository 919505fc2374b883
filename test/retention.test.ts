import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';
import { toIso } from '../src/domain/clock.js';
import { createRetentionPruner, parseRetention, type RetentionStore } from '../src/domain/retention.js';
import { openStore, type Store } from '../src/store/store.js';
import { databaseUrlFor, dropDatabaseFor, locationOf } from './helpers/database.js';
import { startHttpsReceiver, type HttpsReceiver } from './helpers/https-receiver.js';
import { startTestServer, testClock, type TestServer } from './helpers/server.js';
import { createEndpoint, eventually, listDeliveries, triggerAlert } from './helpers/webhook-fixtures.js';

/**
 * Alert events, webhook deliveries and their attempts are kept for ALERTS_EVENT_RETENTION
 * (30 days by default) and then deleted, in small batches; deliveries still to be sent, and
 * the events they need, are never deleted. The clock is injected; the database is a real file.
 */

const START = Date.parse('2026-03-15T10:30:00.000Z');
const MINUTE = 60_000;
const DAY = 86_400_000;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function server(clock: ReturnType<typeof testClock>, env: Record<string, string> = {}, dir?: string): Promise<TestServer> {
  // One retry, a week later: a delivery whose first attempt fails stays pending for that week.
  const s = await startTestServer({ clock, dir, env: { ALERTS_WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32', ALERTS_RETRY_SCHEDULE: '0,168h', ...env } });
  cleanups.push(() => s.close());
  return s;
}

async function receiver(status: number): Promise<HttpsReceiver> {
  const r = await startHttpsReceiver({ host: '127.0.0.1' });
  r.setDefault({ status });
  cleanups.push(() => r.close());
  return r;
}

async function rowCounts(db: Store['db']): Promise<{ events: number; deliveries: number; attempts: number }> {
  const count = async (table: string) => Number((await sql<{ n: number }>`select count(*) as n from ${sql.table(table)}`.execute(db)).rows[0]!.n);
  return { events: await count('alert_events'), deliveries: await count('webhook_deliveries'), attempts: await count('webhook_attempts') };
}

describe('retention of alert events, deliveries and attempts', () => {
  it('deletes finished deliveries, their attempts and unreferenced events once older than 30 days, keeping a pending delivery and its event', async () => {
    const clock = testClock(START);
    const s = await server(clock);
    const ok = await receiver(200);
    const gone = await receiver(404);
    const down = await receiver(503);
    const alsoDown = await receiver(503);
    const delivered = await createEndpoint(s, { url: ok.url, name: 'delivered' });
    const failed = await createEndpoint(s, { url: gone.url, name: 'failed' });
    const pending = await createEndpoint(s, { url: down.url, name: 'pending' });
    const cancelled = await createEndpoint(s, { url: alsoDown.url, name: 'cancelled' });
    await triggerAlert(s);
    // Another account, without endpoints: its event has no delivery at all.
    await triggerAlert(s, await s.newKey('globex'));
    await s.service.deliveryWorker.drain();
    expect((await s.request('DELETE', `/v1/webhook-endpoints/${cancelled.id}`)).status).toBe(204);
    const statuses = async (id: string) => (await listDeliveries(s, id)).map((d) => d.status);
    expect(await statuses(delivered.id)).toEqual(['delivered']);
    expect(await statuses(failed.id)).toEqual(['failed']);
    expect(await statuses(pending.id)).toEqual(['pending']);
    expect(await rowCounts(s.service.store.db)).toEqual({ events: 2, deliveries: 4, attempts: 4 });

    // A minute short of 30 days: nothing goes.
    clock.set(START + 30 * DAY - MINUTE);
    expect(await s.service.retention.pruneNow()).toEqual({ deliveries: 0, attempts: 0, events: 0, history: 0, silences: 0 });
    expect(await rowCounts(s.service.store.db)).toEqual({ events: 2, deliveries: 4, attempts: 4 });

    // Past 30 days: the delivered, failed and cancelled deliveries go with their attempts,
    // and so does the event nobody refers to. The pending delivery and its event stay.
    clock.set(START + 30 * DAY + MINUTE);
    expect(await s.service.retention.pruneNow()).toEqual({ deliveries: 3, attempts: 3, events: 1, history: 4, silences: 0 });
    expect(await rowCounts(s.service.store.db)).toEqual({ events: 1, deliveries: 1, attempts: 1 });
    expect(await listDeliveries(s, delivered.id)).toEqual([]);
    expect(await listDeliveries(s, failed.id)).toEqual([]);

    // The kept delivery can still be sent: its event's body is there.
    down.setDefault({ status: 200 });
    await s.service.deliveryWorker.drain();
    expect(down.requests).toHaveLength(2);
    expect(down.requests[1]!.body.equals(down.requests[0]!.body)).toBe(true);
    expect(await statuses(pending.id)).toEqual(['delivered']);

    // Finished now, it is kept 30 days from its creation and its last attempt, then goes too.
    clock.advance(30 * DAY - MINUTE);
    expect(await s.service.retention.pruneNow()).toEqual({ deliveries: 0, attempts: 0, events: 0, history: 0, silences: 0 });
    clock.advance(2 * MINUTE);
    expect(await s.service.retention.pruneNow()).toEqual({ deliveries: 1, attempts: 2, events: 1, history: 0, silences: 0 });
    expect(await rowCounts(s.service.store.db)).toEqual({ events: 0, deliveries: 0, attempts: 0 });
    // Rules, endpoints and the rest are untouched.
    expect((await s.request('GET', '/v1/webhook-endpoints')).body.data).toHaveLength(3);
    expect((await s.request('GET', '/v1/alert-rules')).body.data).toHaveLength(1);
  });

  it('keeps a finished delivery re-sent on request for the retention period after that attempt', async () => {
    const clock = testClock(START);
    const s = await server(clock);
    const gone = await receiver(404);
    const endpoint = await createEndpoint(s, { url: gone.url });
    await triggerAlert(s);
    await s.service.deliveryWorker.drain();
    const [delivery] = await listDeliveries(s, endpoint.id);
    expect(delivery.status).toBe('failed');

    clock.set(START + 29 * DAY);
    const retry = await s.request('POST', `/v1/webhook-endpoints/${endpoint.id}/deliveries/${delivery.id}/retry`);
    expect(retry.status, retry.text).toBe(202);
    await s.service.deliveryWorker.drain();
    clock.set(START + 31 * DAY);
    expect(await s.service.retention.pruneNow()).toEqual({ deliveries: 0, attempts: 0, events: 0, history: 2, silences: 0 });
    expect((await listDeliveries(s, endpoint.id)).map((d) => d.attempt_count)).toEqual([2]);

    clock.set(START + 59 * DAY + MINUTE);
    expect(await s.service.retention.pruneNow()).toEqual({ deliveries: 1, attempts: 2, events: 1, history: 0, silences: 0 });
  });

  it('prunes at start-up, without a call, what became older than the retention while the service was down', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'alerts-retention-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const clock = testClock(START);
    const first = await startTestServer({ clock, dir, env: { ALERTS_WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32' } });
    const ok = await receiver(200);
    await createEndpoint(first, { url: ok.url });
    await triggerAlert(first);
    await first.service.deliveryWorker.drain();
    expect(await rowCounts(first.service.store.db)).toEqual({ events: 1, deliveries: 1, attempts: 1 });
    await first.close();

    clock.set(START + 31 * DAY);
    const second = await server(clock, {}, dir);
    await eventually(
      () => rowCounts(second.service.store.db),
      (counts) => counts.events + counts.deliveries + counts.attempts === 0,
    );
  });

  it('keeps everything with ALERTS_EVENT_RETENTION=off, and honours a shorter retention', async () => {
    const clock = testClock(START);
    const kept = await server(clock, { ALERTS_EVENT_RETENTION: 'off' });
    const shortLived = await server(clock, { ALERTS_EVENT_RETENTION: '2d' });
    const ok = await receiver(200);
    for (const s of [kept, shortLived]) {
      await createEndpoint(s, { url: ok.url });
      await triggerAlert(s);
      await s.service.deliveryWorker.drain();
    }
    clock.set(START + 2 * DAY + MINUTE);
    expect(await shortLived.service.retention.pruneNow()).toEqual({ deliveries: 1, attempts: 1, events: 1, history: 0, silences: 0 });
    clock.set(START + 3650 * DAY);
    expect(await kept.service.retention.pruneNow()).toEqual({ deliveries: 0, attempts: 0, events: 0, history: 2, silences: 0 });
    expect(await rowCounts(kept.service.store.db)).toEqual({ events: 1, deliveries: 1, attempts: 1 });
  });
});

describe('the pruner', () => {
  /** A store on a real file holding `count` old events, each with one failed delivery and two attempts. */
  async function storeWithOldRows(count: number): Promise<Store> {
    const dir = mkdtempSync(join(tmpdir(), 'alerts-retention-'));
    const store = await openStore({ location: locationOf(await databaseUrlFor(dir)) });
    cleanups.push(async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
      await dropDatabaseFor(dir);
    });
    for (let i = 0; i < count; i++) {
      const at = toIso(START + i * MINUTE);
      await store.db
        .insertInto('alert_events')
        .values({ id: `evt_${i}`, account_id: 'acc', rule_id: 'ar_x', event_type: 'alerts.triggered', payload: '{}', created_at: at })
        .execute();
      await store.db
        .insertInto('webhook_deliveries')
        .values({
          id: `dlv_${i}`,
          account_id: 'acc',
          endpoint_id: 'whe_x',
          event_id: `evt_${i}`,
          event_type: 'alerts.triggered',
          status: 'failed',
          attempts: 2,
          max_attempts: 2,
          next_attempt_at: null,
          locked_until: null,
          last_error: 'HTTP 404',
          created_at: at,
          updated_at: at,
        })
        .execute();
      for (const attempt of [1, 2]) {
        await store.db
          .insertInto('webhook_attempts')
          .values({ delivery_id: `dlv_${i}`, attempt, started_at: at, duration_ms: 1, status_code: 404, error_class: null, error: null, response_body: null })
          .execute();
      }
    }
    return store;
  }

  it('deletes in batches of at most batchSize rows, one transaction each, only rows past the cut-off', async () => {
    const store = await storeWithOldRows(7);
    const calls: string[] = [];
    const counting: RetentionStore = {
      async pruneFinishedDeliveries(before, limit) {
        const result = await store.retention.pruneFinishedDeliveries(before, limit);
        calls.push(`deliveries ${result.deliveries}/${limit}`);
        return result;
      },
      async pruneUnreferencedEvents(before, limit) {
        const result = await store.retention.pruneUnreferencedEvents(before, limit);
        calls.push(`events ${result}/${limit}`);
        return result;
      },
      pruneHistory: (before, limit) => store.retention.pruneHistory(before, limit),
      pruneSilences: (before, limit) => store.retention.pruneSilences(before, limit),
    };
    // Retention reaches the first five rows only (one a minute from START).
    const clock = testClock(START + 30 * DAY + 4 * MINUTE + 1);
    const pruner = createRetentionPruner({ store: counting, clock, retentionMs: 30 * DAY, batchSize: 2 });
    expect(await pruner.pruneNow()).toEqual({ deliveries: 5, attempts: 10, events: 5, history: 0, silences: 0 });
    expect(calls).toEqual(['deliveries 2/2', 'deliveries 2/2', 'deliveries 1/2', 'events 2/2', 'events 2/2', 'events 1/2']);
    const left = await store.db.selectFrom('webhook_deliveries').select('id').orderBy('id').execute();
    expect(left.map((r) => r.id)).toEqual(['dlv_5', 'dlv_6']);
    expect(await rowCounts(store.db)).toEqual({ events: 2, deliveries: 2, attempts: 4 });
  });

  it('never deletes a pending or in-flight delivery, nor the event it needs, however old', async () => {
    const store = await storeWithOldRows(3);
    await store.db.updateTable('webhook_deliveries').set({ status: 'pending', next_attempt_at: START }).where('id', '=', 'dlv_0').execute();
    await store.db.updateTable('webhook_deliveries').set({ status: 'in_flight', locked_until: START }).where('id', '=', 'dlv_1').execute();
    const pruner = createRetentionPruner({ store: store.retention, clock: testClock(START + 365 * DAY), retentionMs: 30 * DAY });
    expect(await pruner.pruneNow()).toEqual({ deliveries: 1, attempts: 2, events: 1, history: 0, silences: 0 });
    const left = await store.db.selectFrom('webhook_deliveries').select(['id', 'status']).orderBy('id').execute();
    expect(left).toEqual([
      { id: 'dlv_0', status: 'pending' },
      { id: 'dlv_1', status: 'in_flight' },
    ]);
    expect((await store.db.selectFrom('alert_events').select('id').orderBy('id').execute()).map((r) => r.id)).toEqual(['evt_0', 'evt_1']);
  });

  it('runs at start and then every interval, and stop() ends the schedule', async () => {
    let runs = 0;
    const store: RetentionStore = {
      pruneFinishedDeliveries: async () => {
        runs += 1;
        return { deliveries: 0, attempts: 0 };
      },
      pruneUnreferencedEvents: async () => 0,
      pruneHistory: async () => 0,
      pruneSilences: async () => 0,
    };
    const pruner = createRetentionPruner({ store, clock: testClock(START), retentionMs: 30 * DAY, intervalMs: 20 });
    pruner.start();
    await eventually(
      async () => runs,
      (n) => n >= 3,
    );
    await pruner.stop();
    const after = runs;
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(runs).toBe(after);
  });
});

describe('ALERTS_EVENT_RETENTION', () => {
  it('defaults to 30 days and takes ms, s, m, h and d units, or off', () => {
    expect(loadConfig({}).eventRetentionMs).toBe(30 * DAY);
    expect(loadConfig({ ALERTS_EVENT_RETENTION: '7d' }).eventRetentionMs).toBe(7 * DAY);
    expect(loadConfig({ ALERTS_EVENT_RETENTION: '36h' }).eventRetentionMs).toBe(36 * 3_600_000);
    expect(loadConfig({ ALERTS_EVENT_RETENTION: 'off' }).eventRetentionMs).toBeNull();
    expect(parseRetention('90m')).toBe(90 * MINUTE);
    expect(parseRetention('3600000')).toBe(3_600_000);
  });

  it.each(['', '30x', 'thirty days', '-1d', '30 d', '59m', '3651d'])('stops start-up with a message naming it for %j', (value) => {
    expect(() => loadConfig({ ALERTS_EVENT_RETENTION: value })).toThrow(ConfigError);
    expect(() => loadConfig({ ALERTS_EVENT_RETENTION: value })).toThrow(/ALERTS_EVENT_RETENTION/);
  });
});

describe('ALERTS_TELEMETRY_RETENTION and ALERTS_HISTORY_RETENTION', () => {
  it('default to 7 days of per-minute telemetry and 30 days of rule history, in the same units, or off', () => {
    expect(loadConfig({}).telemetryRetentionMs).toBe(7 * DAY);
    expect(loadConfig({}).historyRetentionMs).toBe(30 * DAY);
    expect(loadConfig({ ALERTS_TELEMETRY_RETENTION: '36h' }).telemetryRetentionMs).toBe(36 * 3_600_000);
    expect(loadConfig({ ALERTS_HISTORY_RETENTION: '90d' }).historyRetentionMs).toBe(90 * DAY);
    expect(loadConfig({ ALERTS_TELEMETRY_RETENTION: 'off', ALERTS_HISTORY_RETENTION: 'off' })).toMatchObject({ telemetryRetentionMs: null, historyRetentionMs: null });
  });

  it.each([
    ['ALERTS_TELEMETRY_RETENTION', '7 days'],
    ['ALERTS_TELEMETRY_RETENTION', '30m'],
    ['ALERTS_HISTORY_RETENTION', '-1d'],
    ['ALERTS_HISTORY_RETENTION', '3651d'],
  ])('stops start-up with a message naming %s for %j', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(name));
  });
});
