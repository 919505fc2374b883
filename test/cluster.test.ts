/**
 * Several `alerts serve` processes on one PostgreSQL database (src/cluster/): real child
 * processes, a real HTTPS receiver on loopback, a lease TTL of 2 s. Accounts are spread
 * over the shards, so each test's rules have different owners.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { shardOf } from '../src/domain/shards.js';
import { killAllChildren, lastLine, runCli } from './helpers/cli-process.js';
import { clusterStatus, request, startCluster, startInstance, waitUntil, type Instance } from './helpers/cluster.js';
import { dropDatabaseFor, freshDatabaseUrl, inspectDatabase, onPostgres } from './helpers/database.js';
import { startHttpsReceiver, type HttpsReceiver } from './helpers/https-receiver.js';
import { signatureMatches, sleep } from './helpers/webhook-fixtures.js';

let dir: string;
let databaseUrl: string;
const cleanups: (() => Promise<void>)[] = [];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'alerts-cluster-'));
  databaseUrl = onPostgres ? await freshDatabaseUrl(dir) : '';
});
afterEach(async () => {
  await killAllChildren();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  rmSync(dir, { recursive: true, force: true });
  await dropDatabaseFor(dir);
});

interface Account {
  name: string;
  key: string;
  id: string;
}

/** Accounts made with the CLI (one key each), before any server runs. */
async function makeAccounts(url: string, names: readonly string[]): Promise<Account[]> {
  const accounts: Account[] = [];
  for (const name of names) {
    const created = await runCli(['keys', 'create', '--account', name], { cwd: dir, env: { DATABASE_URL: url } });
    expect(created.code, created.stderr).toBe(0);
    accounts.push({ name, key: lastLine(created.stdout), id: '' });
  }
  const db = inspectDatabase(url);
  try {
    for (const account of accounts) account.id = (await db.selectFrom('accounts').select('id').where('name', '=', account.name).executeTakeFirstOrThrow()).id;
  } finally {
    await db.destroy();
  }
  return accounts;
}

const as = (instance: Instance, account: Account, method: string, path: string, body?: unknown) => request(instance, method, path, body, { 'x-api-key': account.key });

async function receiver(): Promise<HttpsReceiver> {
  const r = await startHttpsReceiver();
  cleanups.push(() => r.close());
  return r;
}

/** The outbox, read directly: event types per rule, in order. */
async function outbox(url: string): Promise<Map<string, string[]>> {
  const db = inspectDatabase(url);
  try {
    const rows = await db.selectFrom('alert_events').select(['rule_id', 'event_type']).orderBy('seq').execute();
    const byRule = new Map<string, string[]>();
    for (const row of rows) byRule.set(row.rule_id, [...(byRule.get(row.rule_id) ?? []), row.event_type]);
    return byRule;
  } finally {
    await db.destroy();
  }
}

/** Waits until the live instances share all 64 shards fairly (each holds 64/n, rounded). */
async function balanced(url: string, live: number): Promise<void> {
  await waitUntil(
    () => clusterStatus(url),
    (s) =>
      s.summary.live_instances === live &&
      s.summary.owned_shards === 64 &&
      s.instances.filter((i) => i.state === 'live').every((i) => i.shards.length === Math.floor(64 / live) || i.shards.length === Math.ceil(64 / live)),
    15_000,
  );
}

/** The instance whose lease holds the account's shard. */
async function ownerOf(url: string, instances: readonly Instance[], account: Account): Promise<Instance> {
  const status = await clusterStatus(url);
  const owner = status.instances.find((i) => i.state === 'live' && i.shards.includes(shardOf(account.id)));
  const found = instances.find((i) => owner && i.pid === owner.pid);
  if (!found) throw new Error(`no live owner for shard ${shardOf(account.id)}`);
  return found;
}

const ruleBody = { name: 'API errors', metric: 'api_errors', operator: '>=', threshold_value: 3, window_duration: '5m' };
const oneError = { events: [{ type: 'api_error' }] };

describe.skipIf(!onPostgres)('several instances on one PostgreSQL database', () => {
  it('share the shards fairly, answer every request through any instance, and fire exactly as one instance does', { timeout: 120_000 }, async () => {
    const hooks = await receiver();
    const accounts = await makeAccounts(databaseUrl, ['acme', 'globex', 'initech', 'umbrella']);
    const cluster = await startCluster(3, { databaseUrl, cwd: dir });
    await balanced(databaseUrl, 3);

    const rules: string[] = [];
    for (const [i, account] of accounts.entries()) {
      const via = cluster[i % 3]!;
      const endpoint = await as(via, account, 'POST', '/v1/webhook-endpoints', { name: 'hooks', url: hooks.url, event_types: ['alerts.triggered', 'alerts.resolved'] });
      expect(endpoint.status, endpoint.text).toBe(201);
      const rule = await as(cluster[(i + 1) % 3]!, account, 'POST', '/v1/alert-rules', ruleBody);
      expect(rule.status, rule.text).toBe(201);
      // Answered with the owner's evaluation, wherever the owner is.
      expect(rule.body.current_state).toBe('no_data');
      rules.push(rule.body.id as string);
    }
    // Telemetry round-robin through all three: 5 errors per account, one batch each.
    let next = 0;
    for (let round = 0; round < 5; round++) {
      await Promise.all(accounts.map((account) => as(cluster[next++ % 3]!, account, 'POST', '/v1/telemetry/events', oneError).then((r) => expect(r.status).toBe(202))));
    }
    // Transitions are visible through every instance; values within a second.
    for (const [i, account] of accounts.entries()) {
      for (const instance of cluster) {
        await waitUntil(
          () => as(instance, account, 'GET', `/v1/alert-rules/${rules[i]}`).then((r) => r.body),
          (rule) => rule.current_state === 'alert' && rule.current_value === 5,
          3000,
        );
        const active = await as(instance, account, 'GET', '/v1/alerts');
        expect(active.body.data.map((a: { alert_rule_id: string }) => a.alert_rule_id)).toEqual([rules[i]]);
      }
    }
    await hooks.waitFor(4);
    await sleep(1000);
    const eventIds = hooks.requests.map((r) => r.headers['x-polyai-event-id']);
    expect(new Set(eventIds).size).toBe(4);
    expect(eventIds).toHaveLength(4);
    const events = await outbox(databaseUrl);
    for (const id of rules) expect(events.get(id)).toEqual(['alerts.triggered']);

    // One instance fed the same telemetry answers the same.
    const single = await freshDatabaseUrl(join(dir, 'single'));
    cleanups.push(() => dropDatabaseFor(join(dir, 'single')));
    const [alone] = await makeAccounts(single, ['acme']);
    const one = await startInstance({ databaseUrl: single, cwd: dir });
    const rule = await as(one, alone!, 'POST', '/v1/alert-rules', ruleBody);
    expect(rule.body.current_state).toBe('no_data');
    for (let round = 0; round < 5; round++) await as(one, alone!, 'POST', '/v1/telemetry/events', oneError);
    const there = await as(one, alone!, 'GET', `/v1/alert-rules/${rule.body.id}`);
    const here = await as(cluster[2]!, accounts[0]!, 'GET', `/v1/alert-rules/${rules[0]}`);
    expect(there.body).toMatchObject({ current_state: here.body.current_state, current_value: here.body.current_value });
    expect((await outbox(single)).get(rule.body.id)).toEqual(events.get(rules[0]!));
    await one.stop();
  });

  it('sends exactly one event per transition while instances join, leave with SIGTERM, die with kill -9 and stall past their lease', { timeout: 180_000 }, async () => {
    const hooks = await receiver();
    const accounts = await makeAccounts(databaseUrl, ['acme', 'globex', 'initech', 'umbrella', 'hooli', 'stark']);
    const [a, b] = await startCluster(2, { databaseUrl, cwd: dir });
    const live = [a!, b!];
    await balanced(databaseUrl, 2);
    const rules: string[] = [];
    for (const account of accounts) {
      await as(a!, account, 'POST', '/v1/webhook-endpoints', { name: 'hooks', url: hooks.url, event_types: ['alerts.triggered', 'alerts.resolved'] });
      rules.push((await as(b!, account, 'POST', '/v1/alert-rules', { ...ruleBody, threshold_value: 1 })).body.id);
      expect((await as(a!, account, 'POST', '/v1/telemetry/events', oneError)).status).toBe(202);
    }
    const expected = new Map(rules.map((id) => [id, ['alerts.triggered']]));
    let threshold = 1;
    /** Moves every rule across its threshold (through any live instance) and waits for its owner to commit it. */
    const toggle = async () => {
      threshold = threshold === 1 ? 1000 : 1;
      const state = threshold === 1 ? 'alert' : 'ok';
      for (const [i, account] of accounts.entries()) {
        const via = live[i % live.length]!;
        const patched = await as(via, account, 'PATCH', `/v1/alert-rules/${rules[i]}`, { threshold_value: threshold });
        expect(patched.status, patched.text).toBe(200);
        expected.get(rules[i]!)!.push(threshold === 1 ? 'alerts.triggered' : 'alerts.resolved');
      }
      for (const [i, account] of accounts.entries()) {
        await waitUntil(() => as(live[0]!, account, 'GET', `/v1/alert-rules/${rules[i]}`).then((r) => r.body.current_state), (s) => s === state, 15_000);
      }
    };
    await toggle(); // steady

    const c = await startInstance({ databaseUrl, cwd: dir, apiKey: a!.apiKey, index: 2 });
    live.push(c);
    await balanced(databaseUrl, 3);
    await toggle(); // after a join

    expect((await b!.stop()).code).toBe(0);
    live.splice(live.indexOf(b!), 1);
    // Given up at SIGTERM: taken at once, not after the TTL.
    await balanced(databaseUrl, 2);
    await toggle();

    const victim = await ownerOf(databaseUrl, live, accounts[0]!);
    await victim.kill9();
    live.splice(live.indexOf(victim), 1);
    await toggle(); // the survivor takes the dead one's shards after the TTL

    const d = await startInstance({ databaseUrl, cwd: dir, apiKey: a!.apiKey, index: 3 });
    live.push(d);
    await balanced(databaseUrl, 2);
    // Stalled past its lease: the other takes its shards, and on waking it emits nothing.
    const stalled = await ownerOf(databaseUrl, live, accounts[0]!);
    const other = live.find((i) => i !== stalled)!;
    stalled.pause();
    const patched = await as(other, accounts[0]!, 'PATCH', `/v1/alert-rules/${rules[0]}`, { threshold_value: 1000 });
    // The owner is frozen and cannot answer within a second.
    expect(patched.body.current_state).toBe('unknown');
    expected.get(rules[0]!)!.push('alerts.resolved');
    await waitUntil(() => as(other, accounts[0]!, 'GET', `/v1/alert-rules/${rules[0]}`).then((r) => r.body.current_state), (s) => s === 'ok', 15_000);
    stalled.resume();
    await stalled.waitForLog((r) => /refused: this instance no longer owns the shard|shard leases were lost/.test(String(r.msg)), 10_000);
    await balanced(databaseUrl, 2);

    await sleep(1500);
    const events = await outbox(databaseUrl);
    for (const id of rules) expect(events.get(id), id).toEqual(expected.get(id));
    // At the receiver: every event, each once (every answer was a 200: nothing was retried).
    const total = [...expected.values()].reduce((n, list) => n + list.length, 0);
    await hooks.waitFor(total, 15_000);
    await sleep(500);
    const ids = hooks.requests.map((r) => r.headers['x-polyai-event-id']);
    expect(ids).toHaveLength(total);
    expect(new Set(ids).size).toBe(total);
  });

  it('fires within the TTL plus 2 seconds after kill -9 of the owner, counts every acknowledged batch, and delivers what was in flight with the same event id', { timeout: 120_000 }, async () => {
    const hooks = await receiver();
    hooks.setDefault({ hang: true });
    const [acme] = await makeAccounts(databaseUrl, ['acme']);
    const cluster = await startCluster(2, { databaseUrl, cwd: dir });
    await balanced(databaseUrl, 2);
    await as(cluster[0]!, acme!, 'POST', '/v1/webhook-endpoints', { name: 'hooks', url: hooks.url, event_types: ['alerts.triggered'], timeout_ms: 30_000 });
    const fired = (await as(cluster[0]!, acme!, 'POST', '/v1/alert-rules', { ...ruleBody, threshold_value: 1 })).body.id as string;
    expect((await as(cluster[1]!, acme!, 'POST', '/v1/telemetry/events', oneError)).status).toBe(202);
    // Its delivery hangs at the receiver, claimed by one instance: that one is killed.
    await hooks.waitFor(1);
    const db = inspectDatabase(databaseUrl);
    cleanups.push(() => db.destroy());
    const [inFlight] = await db.selectFrom('webhook_deliveries').select(['event_id', 'locked_by', 'status']).execute();
    expect(inFlight).toMatchObject({ status: 'in_flight', locked_by: expect.any(String) });
    const status = await clusterStatus(databaseUrl);
    const victimPid = status.instances.find((i) => i.instance_id === inFlight!.locked_by)!.pid;
    const victim = cluster.find((i) => i.pid === victimPid)!;
    const survivor = cluster.find((i) => i !== victim)!;

    // An account whose shard the victim owns (accounts land on shards by their id).
    let owned: Account | undefined;
    for (let i = 0; !owned; i++) {
      const [candidate] = await makeAccounts(databaseUrl, [`tenant-${i}`]);
      if ((await ownerOf(databaseUrl, cluster, candidate!)) === victim) owned = candidate;
    }
    const crossing = (await as(survivor, owned, 'POST', '/v1/alert-rules', ruleBody)).body.id as string;
    // Two acknowledged batches before the kill, through both instances.
    expect((await as(victim, owned, 'POST', '/v1/telemetry/events', oneError)).status).toBe(202);
    expect((await as(survivor, owned, 'POST', '/v1/telemetry/events', oneError)).status).toBe(202);
    await victim.kill9();
    const killedAt = Date.now();
    hooks.setDefault({ status: 200 });

    // The crossing batch goes to the survivor: it fires once the survivor owns the shard.
    expect((await as(survivor, owned, 'POST', '/v1/telemetry/events', oneError)).status).toBe(202);
    const rule = await waitUntil(() => as(survivor, owned!, 'GET', `/v1/alert-rules/${crossing}`).then((r) => r.body), (r) => r.current_state === 'alert', 10_000, 20);
    const failoverMs = Date.now() - killedAt;
    expect(failoverMs, `fired ${failoverMs} ms after the kill`).toBeLessThan(2000 + 2000);
    // Every acknowledged batch counts: two before the kill, one after.
    expect(rule.current_value).toBe(3);

    // The delivery that was in flight at the kill is delivered with the same event id, and
    // no delivery stays claimed.
    const rows = await waitUntil(
      () => db.selectFrom('webhook_deliveries').select(['event_id', 'status', 'locked_by', 'attempts']).where('event_id', '=', inFlight!.event_id).execute(),
      (list) => list.length === 1 && list[0]!.status === 'delivered',
      20_000,
    );
    expect(rows[0]).toMatchObject({ locked_by: null, attempts: 2 });
    const received = hooks.requests.map((r) => r.headers['x-polyai-event-id']);
    expect(received.filter((id) => id === inFlight!.event_id)).toHaveLength(2);
    const events = await outbox(databaseUrl);
    expect(events.get(fired)).toEqual(['alerts.triggered']);
    expect(events.get(crossing)).toEqual(['alerts.triggered']);
  });

  it('carries changes to every instance: a secret rotated through one signs the next attempt sent by another, a key revoked through the CLI is refused by all within a second', { timeout: 120_000 }, async () => {
    const hooks = await receiver();
    const [acme] = await makeAccounts(databaseUrl, ['acme']);
    // A never sends webhooks; B sends every one.
    const a = await startInstance({ databaseUrl, cwd: dir, env: { ALERTS_DELIVERY_WORKER: 'off' }, index: 0 });
    const b = await startInstance({ databaseUrl, cwd: dir, apiKey: a.apiKey, index: 1 });
    await balanced(databaseUrl, 2);
    const endpoint = await as(a, acme!, 'POST', '/v1/webhook-endpoints', { name: 'hooks', url: hooks.url, event_types: ['alerts.triggered', 'alerts.resolved'] });
    const rule = (await as(a, acme!, 'POST', '/v1/alert-rules', { ...ruleBody, threshold_value: 1 })).body.id as string;
    await as(a, acme!, 'POST', '/v1/telemetry/events', oneError);
    const [first] = await hooks.waitFor(1);
    expect(signatureMatches(first!, endpoint.body.signing_secret)).toBe(true);

    // B has the old secret cached from that attempt; the rotation goes through A.
    const rotated = await as(a, acme!, 'POST', `/v1/webhook-endpoints/${endpoint.body.id}/rotate-secret`);
    expect(rotated.status, rotated.text).toBe(200);
    await as(a, acme!, 'PATCH', `/v1/alert-rules/${rule}`, { threshold_value: 1000 });
    const [, second] = await hooks.waitFor(2);
    expect(JSON.parse(second!.body.toString()).event_type).toBe('alerts.resolved');
    expect(signatureMatches(second!, rotated.body.signing_secret)).toBe(true);
    expect(signatureMatches(second!, endpoint.body.signing_secret)).toBe(false);

    // Both instances have the key cached (they just answered it); the CLI revokes it.
    for (const instance of [a, b]) expect((await as(instance, acme!, 'GET', '/v1/alert-rules')).status).toBe(200);
    const keyId = (await runCli(['keys', 'list'], { cwd: dir, env: { DATABASE_URL: databaseUrl } })).stdout.split('\n').find((line) => line.includes('\tacme\t'))!.split('\t')[0]!;
    const revoked = await runCli(['keys', 'revoke', keyId], { cwd: dir, env: { DATABASE_URL: databaseUrl } });
    expect(revoked.code, revoked.stderr).toBe(0);
    const revokedAt = Date.now();
    for (const instance of [a, b]) {
      await waitUntil(() => as(instance, acme!, 'GET', '/v1/alert-rules').then((r) => r.status), (status) => status === 401, 1000, 20);
    }
    expect(Date.now() - revokedAt).toBeLessThan(1000);
  });
});
