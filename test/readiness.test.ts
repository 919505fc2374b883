/**
 * GET /readyz: not ready until the instance holds its share of the shards and has replayed
 * them, nor while its delivery worker is not running; ready then, and through later
 * rebalancing. /healthz stays the liveness probe.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createReadiness } from '../src/readiness.js';
import { openStore } from '../src/store/store.js';
import { databaseUrlFor, dropDatabaseFor, inspectDatabase, locationOf, onPostgres } from './helpers/database.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function readyz(s: TestServer): Promise<{ status: number; body: any }> {
  const response = await fetch(`${s.baseUrl}/readyz`);
  return { status: response.status, body: await response.json() };
}

describe('readiness', () => {
  it('is not ready while joining, taking its share or replaying shards; once ready it stays so when shards move; a stopped worker makes it not ready', async () => {
    let share: { held: number; quota: number | undefined } = { held: 0, quota: undefined };
    let loading: number[] = [];
    let worker = true;
    const notReady = createReadiness({ share: () => share, loading: () => loading, workerRunning: () => worker, workerEnabled: true });
    expect(await notReady()).toEqual(['joining the cluster']);
    share = { held: 3, quota: 32 };
    expect(await notReady()).toEqual(['taking its share of the shards (3 of 32 held)']);
    share = { held: 32, quota: 32 };
    loading = [4, 5];
    expect(await notReady()).toEqual(['replaying the rules and telemetry of 2 shard(s)']);
    loading = [];
    expect(await notReady()).toEqual([]);
    // An instance died: every survivor takes and loads shards at once; none leaves the balancer.
    share = { held: 40, quota: 64 };
    loading = [7];
    expect(await notReady()).toEqual([]);
    worker = false;
    expect(await notReady()).toEqual(['the webhook delivery worker is not running']);
    const noWorker = createReadiness({ share: () => ({ held: 64, quota: 64 }), loading: () => [], workerRunning: () => false, workerEnabled: false });
    expect(await noWorker()).toEqual([]);
  });

  it('answers 200 ready once the service has started, with its worker on or off', async () => {
    for (const worker of ['on', 'off']) {
      const s = await startTestServer({ env: { ALERTS_DELIVERY_WORKER: worker } });
      cleanups.push(() => s.close());
      expect(await readyz(s)).toEqual({ status: 200, body: { status: 'ready' } });
      expect((await fetch(`${s.baseUrl}/healthz`)).status).toBe(200);
    }
  });

  it.runIf(onPostgres)('answers 503 naming the cause while another live instance still holds the shards it should take, then 200 once it has them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'alerts-readyz-'));
    cleanups.push(async () => {
      rmSync(dir, { recursive: true, force: true });
      await dropDatabaseFor(dir);
    });
    const url = await databaseUrlFor(dir);
    await (await openStore({ location: locationOf(url) })).close();
    // Another instance, alive for a minute, holding every shard (on another host: not evicted as a dead local process).
    const db = inspectDatabase(url);
    const now = Date.now();
    await db
      .insertInto('cluster_instances')
      .values({ instance_id: 'other', pid: 1, hostname: 'elsewhere', address: null, started_at: new Date(now).toISOString(), heartbeat_at: now, expires_at: now + 60_000, stopping: 0 })
      .execute();
    await db.updateTable('shard_leases').set({ owner: 'other', epoch: 1, expires_at: now + 60_000, acquired_at: now }).execute();
    const s = await startTestServer({ dir, env: { ALERTS_LEASE_TTL: '2s' } });
    cleanups.push(() => s.close());
    const waiting = await readyz(s);
    expect(waiting.status).toBe(503);
    expect(waiting.body.status).toBe('not_ready');
    expect(waiting.body.reasons).toEqual(['taking its share of the shards (0 of 32 held)']);
    expect(waiting.body.message).toBe('taking its share of the shards (0 of 32 held)');
    // The other instance gives its surplus up (here: its leases run out).
    await db.updateTable('shard_leases').set({ expires_at: 0 }).where('shard', '<', 32).execute();
    await db.destroy();
    await s.service.coordinator.rebalance();
    await s.service.engine.settled();
    expect(await readyz(s)).toEqual({ status: 200, body: { status: 'ready' } });
  });
});
