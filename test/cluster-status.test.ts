/**
 * `alerts cluster status [--json]`: the instances sharing the database, their shards, lease
 * ages and lag, read from the cluster tables. The rows are seeded directly (on SQLite, or on
 * PostgreSQL with TEST_DATABASE_URL), a fresh database per test.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { shardRanges } from '../src/cli/cluster.js';
import type { ClusterStatus } from '../src/store/cluster-status.js';
import { openStore } from '../src/store/store.js';
import { killAllChildren, runCli, type CliResult } from './helpers/cli-process.js';
import { freshDatabaseUrl, inspectDatabase, locationOf, testDatabaseKind } from './helpers/database.js';

/** A line of a Node.js stack trace, or a source location: never shown to an operator. */
const STACK_FRAME = /^\s+at .+|\.(?:js|ts):\d+/m;
const SECOND = 1000;

let dir: string;
let url: string;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'alerts-cluster-status-'));
  url = await freshDatabaseUrl(dir);
});
afterEach(async () => {
  await killAllChildren();
  rmSync(dir, { recursive: true, force: true });
});

const cli = (args: string[], env: Record<string, string> = {}) => runCli(args, { cwd: dir, env: { DATABASE_URL: url, ...env } });

async function migrated(): Promise<void> {
  const store = await openStore({ location: locationOf(url) });
  await store.close();
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/**
 * a: live, owns 0-20 and 42 (shard 5 three batches behind).
 * b: stopping, still owns 21-30.
 * c: dead 20 s ago; its leases of 31-33 expired with it (shard 31 five batches behind).
 * ancient: dead for two hours (not shown).
 * 34-41 and 43-63 never had an owner (shard 50 two batches behind).
 */
async function seed(): Promise<number> {
  await migrated();
  const db = inspectDatabase(url);
  const now = Date.now();
  try {
    const instance = (id: string, pid: number, address: string | null, heartbeatAgo: number, expiresIn: number, stopping = 0) => ({
      instance_id: id,
      pid,
      hostname: `host-${id}`,
      address,
      started_at: new Date(now - 10 * 60 * SECOND).toISOString(),
      heartbeat_at: now - heartbeatAgo,
      expires_at: now + expiresIn,
      stopping,
    });
    await db
      .insertInto('cluster_instances')
      .values([
        instance('inst-a', 101, 'http://127.0.0.1:8081', 1 * SECOND, 60 * SECOND),
        { ...instance('inst-b', 102, 'http://127.0.0.1:8082', 2 * SECOND, 60 * SECOND, 1), started_at: new Date(now - 5 * 60 * SECOND).toISOString() },
        instance('inst-c', 103, null, 30 * SECOND, -20 * SECOND),
        instance('inst-ancient', 104, null, 2 * 3600 * SECOND, -2 * 3600 * SECOND),
      ])
      .execute();
    const lease = (shards: number[], owner: string, acquiredAgo: number, expiresIn: number, epoch: number) =>
      db.updateTable('shard_leases').set({ owner, epoch, acquired_at: now - acquiredAgo, expires_at: now + expiresIn }).where('shard', 'in', shards).execute();
    await lease([...range(0, 20), 42], 'inst-a', 30 * SECOND, 60 * SECOND, 3);
    await lease(range(21, 30), 'inst-b', 45 * SECOND, 60 * SECOND, 2);
    await lease(range(31, 33), 'inst-c', 90 * SECOND, -20 * SECOND, 1);
    const sequence = async (shard: number, last: number, applied: number) => {
      await db.updateTable('shard_sequences').set({ last_seq: last }).where('shard', '=', shard).execute();
      await db.updateTable('shard_leases').set({ applied_seq: applied }).where('shard', '=', shard).execute();
    };
    await sequence(5, 10, 7);
    await sequence(42, 4, 4);
    await sequence(31, 5, 0);
    await sequence(50, 2, 0);
  } finally {
    await db.destroy();
  }
  return now;
}

function ok(result: CliResult): string {
  expect(result.code, `stdout: ${result.stdout}\nstderr: ${result.stderr}`).toBe(0);
  expect(result.stderr).toBe('');
  return result.stdout;
}

/** The table row (whitespace-separated cells) that starts with `first`. */
function row(stdout: string, first: string): string[] {
  const line = stdout.split('\n').find((l) => l.trim().split(/\s{2,}/)[0] === first);
  expect(line, `no row for ${first} in:\n${stdout}`).toBeDefined();
  return line!.trim().split(/\s{2,}/);
}

describe('shardRanges', () => {
  it('compresses runs of shard numbers', () => {
    expect(shardRanges([])).toBe('-');
    expect(shardRanges([42])).toBe('42');
    expect(shardRanges([...range(0, 20), 42])).toBe('0-20,42');
    expect(shardRanges([5, 3, 4, 9, 10, 63, 3])).toBe('3-5,9-10,63');
  });
});

describe(`alerts cluster status (${testDatabaseKind})`, () => {
  it('prints each instance with its state, shard ranges, lease ages and lag, the shards without a live owner, and a summary', async () => {
    await seed();
    const stdout = ok(await cli(['cluster', 'status']));

    expect(stdout).toContain(`(${testDatabaseKind}), database time `);
    expect(row(stdout, 'INSTANCE')).toEqual(['INSTANCE', 'STATE', 'PID', 'HOST', 'ADDRESS', 'STARTED', 'HEARTBEAT', 'SHARDS', 'LEASE AGE', 'LEASE EXPIRES IN', 'LAG']);

    const a = row(stdout, 'inst-a');
    expect(a.slice(0, 5)).toEqual(['inst-a', 'live', '101', 'host-inst-a', 'http://127.0.0.1:8081']);
    expect(a[6]).toMatch(/^\d+\.\ds ago$/);
    expect(a[7]).toBe('0-20,42');
    // Acquired 30 s ago, expiring in 60 s (less the time the command took).
    const leaseAge = Number(/^(\d+\.\d)s$/.exec(a[8]!)?.[1]);
    expect(leaseAge).toBeGreaterThanOrEqual(29);
    expect(leaseAge).toBeLessThan(45);
    const expiresIn = Number(/^(\d+\.\d)s$/.exec(a[9]!)?.[1]);
    expect(expiresIn).toBeGreaterThan(45);
    expect(expiresIn).toBeLessThanOrEqual(61);
    expect(a[10]).toBe('3');

    const b = row(stdout, 'inst-b');
    expect([b[0], b[1], b[7], b[10]]).toEqual(['inst-b', 'stopping', '21-30', '0']);

    const c = row(stdout, 'inst-c');
    expect([c[0], c[1], c[4], c[7], c[8], c[9], c[10]]).toEqual(['inst-c', 'dead', '-', '-', '-', '-', '0']);
    expect(c[6]).toMatch(/^\d+\.\ds ago \(expired \d+\.\ds ago\)$/);

    // Live first, then stopping, then dead.
    expect(stdout.indexOf('inst-a')).toBeLessThan(stdout.indexOf('inst-b'));
    expect(stdout.indexOf('inst-b')).toBeLessThan(stdout.indexOf('inst-c'));
    expect(stdout).not.toContain('inst-ancient');
    expect(stdout).toContain('(1 dead instance that expired more than 60 minutes ago not shown)');

    expect(stdout).toContain('Shards without a live owner: 31-41,43-63 (lag 7)');
    const expired = row(stdout, '31');
    expect([expired[0], expired[1], expired[2], expired[4]]).toEqual(['31', 'expired', 'inst-c', '5']);
    expect(expired[3]).toMatch(/^\d+\.\ds ago$/);
    expect(row(stdout, '32').slice(0, 3)).toEqual(['32', 'expired', 'inst-c']);
    expect(row(stdout, '50')).toEqual(['50', 'unowned', '-', '-', '2']);

    const lines = stdout.trimEnd().split('\n');
    expect(lines.at(-1)).toBe('1 live instance (1 stopping, 1 dead), 32/64 shards owned, total lag 10');
  });

  it('--json prints the snapshot: states, shards owned, lag, lease ages and expiries in database time', async () => {
    const seededAt = await seed();
    const stdout = ok(await cli(['cluster', 'status', '--json']));
    const status = JSON.parse(stdout) as ClusterStatus;

    expect(status.database).toBe(testDatabaseKind);
    expect(status.shard_count).toBe(64);
    // The database's clock (same host): a moment after seeding.
    expect(status.now).toBeGreaterThanOrEqual(seededAt - 1000);
    expect(status.now).toBeLessThan(seededAt + 15_000);
    expect(status.now_iso).toBe(new Date(status.now).toISOString());

    expect(status.instances.map((i) => [i.instance_id, i.state])).toEqual([
      ['inst-a', 'live'],
      ['inst-b', 'stopping'],
      ['inst-c', 'dead'],
    ]);
    expect(status.hidden_dead_instances).toBe(1);
    const [a, b, c] = status.instances;
    expect(a).toMatchObject({ pid: 101, hostname: 'host-inst-a', address: 'http://127.0.0.1:8081', shards: [...range(0, 20), 42], lag: 3 });
    expect(a!.heartbeat_age_ms).toBeGreaterThanOrEqual(0);
    expect(a!.heartbeat_age_ms).toBeLessThan(15_000);
    expect(a!.expires_in_ms).toBeGreaterThan(0);
    expect(b).toMatchObject({ shards: range(21, 30), lag: 0 });
    expect(c).toMatchObject({ address: null, shards: [], lag: 0 });
    expect(c!.expires_in_ms).toBeLessThan(0);

    expect(status.shards).toHaveLength(64);
    expect(status.shards.map((s) => s.shard)).toEqual(range(0, 63));
    const shard5 = status.shards[5]!;
    expect(shard5).toMatchObject({ state: 'owned', owner: 'inst-a', epoch: 3, last_seq: 10, applied_seq: 7, lag: 3 });
    expect(shard5.lease_age_ms).toBeGreaterThanOrEqual(30_000 - 1000);
    expect(shard5.expires_in_ms).toBeGreaterThan(0);
    expect(shard5.expires_in_ms).toBeLessThanOrEqual(60_000 + 1000);
    expect(status.shards[31]).toMatchObject({ state: 'expired', owner: 'inst-c', epoch: 1, lag: 5 });
    expect(status.shards[31]!.expires_in_ms).toBeLessThan(0);
    expect(status.shards[50]).toMatchObject({ state: 'unowned', owner: null, lease_age_ms: null, expires_in_ms: null, lag: 2 });

    expect(status.unowned_shards.map((s) => s.shard)).toEqual([...range(31, 41), ...range(43, 63)]);
    expect(status.unowned_shards.filter((s) => s.lag !== 0)).toEqual([
      { shard: 31, state: 'expired', owner: 'inst-c', lag: 5 },
      { shard: 50, state: 'unowned', owner: null, lag: 2 },
    ]);
    expect(status.shards_of_unlisted_owners).toEqual([]);
    expect(status.summary).toEqual({ live_instances: 1, stopping_instances: 1, dead_instances: 1, owned_shards: 32, total_lag: 10 });
  });

  it('on a database no server has joined yet: no instances, every shard without an owner', async () => {
    await migrated();
    const stdout = ok(await cli(['cluster', 'status']));
    expect(stdout).toContain('No instances');
    expect(stdout).toContain('Shards without a live owner: 0-63 (lag 0)');
    expect(stdout.trimEnd().split('\n').at(-1)).toBe('0 live instances, 0/64 shards owned, total lag 0');

    const status = JSON.parse(ok(await cli(['cluster', 'status', '--json']))) as ClusterStatus;
    expect(status.instances).toEqual([]);
    expect(status.summary).toEqual({ live_instances: 0, stopping_instances: 0, dead_instances: 0, owned_shards: 0, total_lag: 0 });
  });

  it('names a valid lease whose owner has no instance row', async () => {
    await migrated();
    const db = inspectDatabase(url);
    try {
      await db.updateTable('shard_leases').set({ owner: 'ghost', epoch: 1, acquired_at: Date.now(), expires_at: Date.now() + 60_000 }).where('shard', 'in', [7, 8]).execute();
    } finally {
      await db.destroy();
    }
    const stdout = ok(await cli(['cluster', 'status']));
    expect(stdout).toContain('Shards leased to instances not listed above: 7-8');
    expect(stdout.trimEnd().split('\n').at(-1)).toBe('0 live instances, 2/64 shards owned, total lag 0');
  });

  it('fails as the other commands do when the schema is behind (ALERTS_AUTO_MIGRATE=off) or the database is unreachable', async () => {
    for (const env of [{ ALERTS_AUTO_MIGRATE: 'off' }, { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nothing' }] as Record<string, string>[]) {
      const status = await cli(['cluster', 'status'], env);
      const keys = await cli(['keys', 'list'], env);
      expect(status.code, status.stdout + status.stderr).toBe(1);
      expect(status.stdout).toBe('');
      expect(status.stderr).toMatch(/^alerts: DATABASE_URL=/);
      expect(status.stderr, 'an operator sees the reason, not a stack trace').not.toMatch(STACK_FRAME);
      // The very message `alerts keys list` gives.
      expect(status.stderr).toBe(keys.stderr);
      expect(status.code).toBe(keys.code);
    }
    expect((await cli(['cluster', 'status'], { ALERTS_AUTO_MIGRATE: 'off' })).stderr).toContain('alerts migrate');
  });
});
