/**
 * The multi-process harness (test/helpers/cluster.ts), checked on one instance: started on
 * the test database (SQLite, or PostgreSQL with TEST_DATABASE_URL), reached through
 * request(), frozen with SIGSTOP and thawed, then stopped with SIGTERM.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { killAllChildren } from './helpers/cli-process.js';
import { request, startInstance, waitUntil } from './helpers/cluster.js';
import { databaseUrlFor, dropDatabaseFor, testDatabaseKind } from './helpers/database.js';

let dir: string;
let databaseUrl: string;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'alerts-cluster-harness-'));
  databaseUrl = await databaseUrlFor(dir);
});
afterEach(async () => {
  // The children go first: the database is dropped under no live connection.
  await killAllChildren();
  rmSync(dir, { recursive: true, force: true });
  await dropDatabaseFor(dir);
});

/** The process state letter of /proc/<pid>/stat (Linux): T while stopped by SIGSTOP. */
function processState(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0]!;
}

describe(`the cluster harness (${testDatabaseKind})`, () => {
  it('starts one instance, reaches it, pauses and resumes it, and stops it with SIGTERM (exit 0)', { timeout: 60_000 }, async () => {
    const instance = await startInstance({ databaseUrl, cwd: dir });
    expect(instance.port).toBeGreaterThan(0);
    expect(instance.baseUrl).toBe(`http://127.0.0.1:${instance.port}`);
    expect(instance.pid).toBe(instance.child.pid);
    expect(instance.env).toMatchObject({ DATABASE_URL: databaseUrl, ALERTS_LEASE_TTL: '2s', ALERTS_WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32' });
    expect(instance.env.NODE_EXTRA_CA_CERTS).toMatch(/ca\.crt$/);

    const health = await request(instance, 'GET', '/healthz');
    expect(health.status, health.text).toBe(200);
    // The bootstrap key it was started with authenticates.
    const rules = await request(instance, 'GET', '/v1/alert-rules');
    expect(rules.status, rules.text).toBe(200);
    expect((await request(instance, 'GET', '/v1/alert-rules', undefined, { 'x-api-key': '' })).status).toBe(401);

    // Its log: one JSON record a line, the start-up one among them.
    expect(instance.lines().length).toBeGreaterThan(0);
    await instance.waitForLog((record) => typeof record.msg === 'string' && /started/.test(record.msg));
    expect(instance.logs().find((r) => /started/.test(String(r.msg)))).toMatchObject({ pid: instance.pid });

    instance.pause();
    expect(instance.paused).toBe(true);
    await waitUntil(async () => processState(instance.pid), (state) => state === 'T', 2000, 10);
    // A request sent meanwhile waits (the kernel queues the connection); it is not aborted,
    // which would leave the server a request whose client went away.
    let answered = false;
    const waiting = request(instance, 'GET', '/healthz').then((res) => {
      answered = true;
      return res;
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(answered).toBe(false);
    expect(instance.hasExited()).toBe(false);

    instance.resume();
    expect(instance.paused).toBe(false);
    await waitUntil(async () => processState(instance.pid), (state) => state !== 'T', 2000, 10);
    expect((await waiting).status).toBe(200);
    expect((await request(instance, 'GET', '/healthz')).status).toBe(200);

    const exit = await instance.stop();
    expect(exit, instance.stdout() + instance.stderr()).toEqual({ code: 0, signal: null });
    expect(instance.hasExited()).toBe(true);
    await expect(instance.exited).resolves.toEqual({ code: 0, signal: null });
  });

  it('stops a paused instance with SIGTERM too (it is resumed so that the signal is handled)', { timeout: 60_000 }, async () => {
    const instance = await startInstance({ databaseUrl, cwd: dir, webhooks: false });
    expect(instance.env.NODE_EXTRA_CA_CERTS).toBeUndefined();
    instance.pause();
    expect(await instance.stop()).toEqual({ code: 0, signal: null });
  });

  it('kill9() ends it with SIGKILL', { timeout: 60_000 }, async () => {
    const instance = await startInstance({ databaseUrl, cwd: dir });
    expect(await instance.kill9()).toEqual({ code: null, signal: 'SIGKILL' });
  });
});
