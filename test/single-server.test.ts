/**
 * One database, one server. A second `alerts serve` on the same database is refused at
 * start-up with a message naming the running one, before it touches anything (it must not
 * take back the first one's deliveries in flight); CLI commands still run beside it. The
 * lease dies with its process: after kill -9 the next start takes over at once.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../src/logger.js';
import { acquireServerLease, DatabaseInUseError } from '../src/server-lease.js';
import { databaseUrlFor, dropDatabaseFor, inspectDatabase, locationOf, onPostgres } from './helpers/database.js';
import { openStore, type Store } from '../src/store/store.js';
import { killAllChildren, lastLine, runCli, startCliServer } from './helpers/cli-process.js';
import { startHttpsReceiver, testTls, type HttpsReceiver } from './helpers/https-receiver.js';
import { startTestServer } from './helpers/server.js';
import { createEndpoint, eventually, onlyDelivery, sleep, triggerAlert } from './helpers/webhook-fixtures.js';

let dir: string;
let dbPath: string;
const cleanups: (() => Promise<void>)[] = [];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'alerts-single-server-'));
  dbPath = await databaseUrlFor(dir);
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await killAllChildren();
  rmSync(dir, { recursive: true, force: true });
  await dropDatabaseFor(dir);
});

/** The deliveries as stored, read through a connection of its own. */
async function deliveryRows(): Promise<{ status: string; attempts: number }[]> {
  const db = inspectDatabase(dbPath);
  try {
    return await db.selectFrom('webhook_deliveries').select(['status', 'attempts']).execute();
  } finally {
    await db.destroy();
  }
}

async function receiver(): Promise<HttpsReceiver> {
  const r = await startHttpsReceiver();
  cleanups.push(() => r.close());
  return r;
}

describe('a second alerts serve on the same database', () => {
  // PostgreSQL takes several servers (test/cluster.test.ts).
  it.skipIf(onPostgres)('is refused on SQLite with a message naming the running server and pointing to PostgreSQL, leaves its deliveries in flight alone, and CLI commands still run', { timeout: 60_000 }, async () => {
    const created = await runCli(['keys', 'create', '--account', 'acme'], { cwd: dir, env: { DATABASE_URL: dbPath } });
    expect(created.code, created.stderr).toBe(0);
    const key = lastLine(created.stdout);
    const hanging = await receiver();
    hanging.setDefault({ hang: true });
    const env = { DATABASE_URL: dbPath, NODE_EXTRA_CA_CERTS: testTls().caPath, ALERTS_WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32' };
    const first = await startCliServer({ cwd: dir, env });
    const api = async (method: string, path: string, body: unknown) => {
      const res = await fetch(first.baseUrl + path, { method, headers: { 'x-api-key': key, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      expect(res.status, await res.clone().text()).toBeLessThan(300);
      return res.json() as Promise<Record<string, any>>;
    };
    await api('POST', '/v1/webhook-endpoints', { name: 'hangs', url: hanging.url, event_types: ['alerts.triggered'], timeout_ms: 30_000 });
    await api('POST', '/v1/alert-rules', { name: 'errors', metric: 'api_errors', operator: '>=', threshold_value: 1, window_duration: '5m' });
    await api('POST', '/v1/telemetry/events', { events: [{ type: 'api_error' }] });
    await hanging.waitFor(1);
    expect(await deliveryRows()).toEqual([{ status: 'in_flight', attempts: 1 }]);

    for (const extra of [{}, { ALERTS_DELIVERY_WORKER: 'off' }] as Record<string, string>[]) {
      const started = Date.now();
      const second = await runCli(['serve'], { cwd: dir, env: { ...env, ...extra, HOST: '127.0.0.1', PORT: '0' }, timeoutMs: 15_000 });
      expect(second.code, second.stdout + second.stderr).not.toBe(0);
      expect(second.code).not.toBeNull();
      expect(second.stderr).toContain(`another alerts server (pid ${first.child.pid} on host ${hostname()}) is using ${dbPath}; stop it first`);
      expect(second.stderr).toContain('to run several instances, use PostgreSQL');
      expect(Date.now() - started).toBeLessThan(10_000);
    }
    // The refused start-up did not take back the running server's delivery in flight.
    expect(await deliveryRows()).toEqual([{ status: 'in_flight', attempts: 1 }]);

    const listed = await runCli(['keys', 'list'], { cwd: dir, env: { DATABASE_URL: dbPath } });
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toMatch(/\tacme\t/);
    expect((await fetch(`${first.baseUrl}/healthz`)).status).toBe(200);
    expect(hanging.requests).toHaveLength(1);
  });

  it('starts at once after kill -9 of the first one: a dead process of this host holds no lease', { timeout: 60_000 }, async () => {
    const first = await startCliServer({ cwd: dir, env: { DATABASE_URL: dbPath } });
    first.child.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');

    const started = Date.now();
    const second = await startCliServer({ cwd: dir, env: { DATABASE_URL: dbPath } });
    // Far less than the lease's expiry: taken over because the holder's pid is gone.
    expect(Date.now() - started).toBeLessThan(8_000);
    if (onPostgres) {
      // Its shard leases, not a server lease: freed at once for the same reason.
      expect(second.stdout()).toContain('instances of this host that died without leaving: their shards are taken over now');
      expect(second.stdout()).toContain(`"pids":[${first.child.pid}]`);
    } else {
      expect(second.stdout()).toContain('the previous server on this database died; taking over');
      expect(second.stdout()).toContain(`"previous_pid":${first.child.pid}`);
    }
    expect((await second.stop()).code).toBe(0);

    // A clean shutdown releases the lease: the next start has nothing to take over.
    const third = await startCliServer({ cwd: dir, env: { DATABASE_URL: dbPath } });
    expect(third.stdout()).not.toContain('taking over');
  });
});

describe('the server lease', () => {
  const logger = createLogger('silent');
  let store: Store;

  beforeEach(async () => {
    store = await openStore({ location: locationOf(dbPath) });
    cleanups.push(() => store.close());
  });

  const acquire = (options: { ttlMs?: number; renewMs?: number; onLost?: () => void } = {}) =>
    acquireServerLease({ repository: store.serverLease, databasePath: dbPath, logger, onLost: options.onLost ?? (() => {}), ttlMs: options.ttlMs ?? 1000, renewMs: options.renewMs ?? 100 });

  it('refuses a holder that cannot be asked (this very process) once it is seen renewing, and is free once released', async () => {
    const holder = await acquire();
    const started = Date.now();
    await expect(acquire()).rejects.toBeInstanceOf(DatabaseInUseError);
    expect(Date.now() - started).toBeLessThan(900);
    await holder.release();
    const next = await acquire();
    await next.release();
  });

  it('takes over the lease of a holder on another host once it expires without renewal', async () => {
    const now = Date.now();
    await store.db
      .insertInto('server_lease')
      .values({ id: 1, instance_id: 'gone', pid: 1234, hostname: 'elsewhere.invalid', started_at: new Date(now).toISOString(), heartbeat_at: now, expires_at: now + 400 })
      .execute();
    const lease = await acquire();
    expect(Date.now() - now).toBeGreaterThanOrEqual(400);
    expect((await store.serverLease.holder())?.instance_id).toBe(lease.instanceId);
    await lease.release();
    expect(await store.serverLease.holder()).toBeUndefined();
  });

  it('tells its server to stop when another one took the lease over', async () => {
    let lost = false;
    const lease = await acquire({ onLost: () => (lost = true) });
    await store.db.updateTable('server_lease').set({ instance_id: 'usurper' }).execute();
    await eventually(async () => lost, (value) => value, 2000);
    await lease.release();
    // Releasing does not remove the other server's lease.
    expect((await store.serverLease.holder())?.instance_id).toBe('usurper');
  });
});

describe('ALERTS_DELIVERY_WORKER=off', () => {
  it('records deliveries without sending them; a server with the worker on sends them later', async () => {
    const testDir = mkdtempSync(join(tmpdir(), 'alerts-worker-off-'));
    cleanups.push(async () => {
      rmSync(testDir, { recursive: true, force: true });
      await dropDatabaseFor(testDir);
    });
    const r = await receiver();
    const off = await startTestServer({ dir: testDir, env: { ALERTS_WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32', ALERTS_DELIVERY_WORKER: 'off' } });
    const endpoint = await createEndpoint(off, { url: r.url });
    await triggerAlert(off);
    await sleep(1500);
    expect(r.requests).toHaveLength(0);
    expect(await onlyDelivery(off, endpoint.id)).toMatchObject({ status: 'pending', attempt_count: 0 });
    await off.close();

    const on = await startTestServer({ dir: testDir, env: { ALERTS_WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32', ALERTS_DELIVERY_WORKER: 'on' } });
    cleanups.push(() => on.close());
    await r.waitFor(1);
    await eventually(() => onlyDelivery(on, endpoint.id), (d) => d.status === 'delivered');
  });
});
