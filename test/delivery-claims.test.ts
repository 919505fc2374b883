/**
 * Attempts are counted when they are claimed, and claims end without a result when their
 * instance dies or they outlive their lease. A delivery whose attempt kills the process every
 * time ends failed after its last attempt instead of being retried for ever; a claim left in
 * flight past its `locked_until` is taken again by a running worker, even when its owner is
 * still alive. (Claims shared by several instances: delivery-cluster.test.ts.)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { NO_RESULT_ERROR } from '../src/domain/ports/deliveries-repository.js';
import { databaseUrlFor, dropDatabaseFor, inspectDatabase, onPostgres } from './helpers/database.js';
import { killAllChildren, lastLine, runCli, startCliServer, type CliServer } from './helpers/cli-process.js';
import { startHttpsReceiver, testTls, type HttpsReceiver } from './helpers/https-receiver.js';
import { startTestServer, testClock, type TestServer } from './helpers/server.js';
import { createEndpoint, eventually, onlyDelivery, sleep, triggerAlert } from './helpers/webhook-fixtures.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await killAllChildren();
});

async function receiver(): Promise<HttpsReceiver> {
  const r = await startHttpsReceiver();
  cleanups.push(() => r.close());
  return r;
}

async function server(env: Record<string, string>, clock?: ReturnType<typeof testClock>): Promise<TestServer> {
  const s = await startTestServer({ clock, env: { ALERTS_WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32', ...env } });
  cleanups.push(() => s.close());
  return s;
}

describe('an attempt that kills the process', () => {
  it('is counted: after kill -9 during each of its 3 attempts, the next start fails the delivery instead of sending it again', { timeout: 90_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'alerts-crash-loop-'));
    const dbPath = await databaseUrlFor(dir);
    cleanups.push(async () => {
      // The server child goes first: its database is dropped under no live connection.
      await killAllChildren();
      rmSync(dir, { recursive: true, force: true });
      await dropDatabaseFor(dir);
    });
    const rows = async () => {
      const db = inspectDatabase(dbPath);
      try {
        return await db.selectFrom('webhook_deliveries').select(['status', 'attempts', 'last_error']).execute();
      } finally {
        await db.destroy();
      }
    };
    const created = await runCli(['keys', 'create', '--account', 'acme'], { cwd: dir, env: { DATABASE_URL: dbPath } });
    expect(created.code, created.stderr).toBe(0);
    const key = lastLine(created.stdout);
    // The receiver takes every request and never answers: the process dies mid-attempt.
    const r = await receiver();
    r.setDefault({ hang: true });
    const env = {
      DATABASE_URL: dbPath,
      NODE_EXTRA_CA_CERTS: testTls().caPath,
      ALERTS_WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32',
      ALERTS_RETRY_SCHEDULE: '0,100ms,100ms',
    };

    let current: CliServer = await startCliServer({ cwd: dir, env });
    const api = async (path: string, body: unknown) => {
      const res = await fetch(current.baseUrl + path, { method: 'POST', headers: { 'x-api-key': key, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      expect(res.status, await res.clone().text()).toBeLessThan(300);
    };
    await api('/v1/webhook-endpoints', { name: 'kills us', url: r.url, event_types: ['alerts.triggered'], timeout_ms: 30_000 });
    await api('/v1/alert-rules', { name: 'errors', metric: 'api_errors', operator: '>=', threshold_value: 1, window_duration: '5m' });
    await api('/v1/telemetry/events', { events: [{ type: 'api_error' }] });

    for (let attempt = 1; attempt <= 3; attempt++) {
      await r.waitFor(attempt, 10_000);
      // Counted while it runs, before any result.
      expect(await rows()).toEqual([{ status: 'in_flight', attempts: attempt, last_error: null }]);
      current.child.kill('SIGKILL');
      await current.exited;
      current = await startCliServer({ cwd: dir, env });
    }
    // The fourth start: the delivery's last attempt left no result (its instance is dead), so
    // it is failed, not sent again.
    await eventually(rows, (list) => list[0]?.status === 'failed', 5_000);
    await sleep(1000);
    expect(r.requests).toHaveLength(3);
    expect(await rows()).toEqual([{ status: 'failed', attempts: 3, last_error: NO_RESULT_ERROR }]);
    expect(current.stdout()).toContain('webhook delivery failed');
  });
});

describe('a claim past its locked_until', () => {
  it('is taken again by a running worker, as the next attempt; a live claim is left alone', async () => {
    const s = await server({ ALERTS_DELIVERY_WORKER: 'on' });
    const r = await receiver();
    const endpoint = await createEndpoint(s, { url: r.url });
    await triggerAlert(s);
    await r.waitFor(1);
    const delivered = await eventually(() => onlyDelivery(s, endpoint.id), (d) => d.status === 'delivered');
    expect(delivered.attempt_count).toBe(1);

    // A claim of another instance that stalled, alive (its heartbeat goes on): in flight,
    // its lease not passed yet.
    const db = s.service.store.db;
    const dbNow = onPostgres ? sql<number>`(floor(extract(epoch from clock_timestamp()) * 1000))::bigint` : sql<number>`cast(unixepoch('subsec') * 1000 as integer)`;
    await sql`insert into cluster_instances (instance_id, pid, hostname, address, started_at, heartbeat_at, expires_at, stopping)
              values ('stalled', 1, 'elsewhere', null, '2026-01-01T00:00:00.000Z', ${dbNow}, ${dbNow} + 600000, 0)`.execute(db);
    await db.updateTable('webhook_deliveries').set({ status: 'in_flight', locked_by: 'stalled', locked_until: Date.now() + 60_000 }).execute();
    await sleep(1500);
    expect(r.requests).toHaveLength(1);
    expect((await onlyDelivery(s, endpoint.id)).status).toBe('in_flight');

    // Once its lease passes, the next reap takes it back (the worker looks every second).
    await db.updateTable('webhook_deliveries').set({ locked_until: Date.now() - 1 }).execute();
    await r.waitFor(2, 5000);
    const again = await eventually(() => onlyDelivery(s, endpoint.id), (d) => d.status === 'delivered');
    // The expired claim's attempt stays counted; the new one is attempt 2.
    expect(again.attempt_count).toBe(2);
    expect(again.attempts.map((a: any) => a.attempt)).toEqual([1, 2]);
  });

  it('fails the delivery when the expired claim was its last attempt', async () => {
    const clock = testClock();
    const s = await server({ ALERTS_RETRY_SCHEDULE: '0,1m' }, clock);
    const r = await receiver();
    const endpoint = await createEndpoint(s, { url: r.url });
    await triggerAlert(s);
    await s.service.store.db
      .updateTable('webhook_deliveries')
      .set({ status: 'in_flight', attempts: 2, locked_until: clock.now() - 1 })
      .execute();
    await s.service.deliveryWorker.drain();
    expect(r.requests).toHaveLength(0);
    expect(await onlyDelivery(s, endpoint.id)).toMatchObject({ status: 'failed', attempt_count: 2, next_attempt_at: null, last_error: NO_RESULT_ERROR });
  });
});
