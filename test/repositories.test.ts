/**
 * Repository contract: the same assertions against each store implementation. SQLite always;
 * PostgreSQL too when TEST_DATABASE_URL names one (`npm run test:postgres`, and CI). What is
 * checked is what the rest of the service relies on whichever database serves it: values
 * round-trip exactly (booleans, integers beyond 2^31, JSON text, timestamps), lists come in
 * the same order, limits hold under concurrency, and a lost race is one of our errors.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FencedError } from '../src/domain/ports/cluster-repository.js';
import { shardOf } from '../src/domain/shards.js';
import { AppError } from '../src/domain/errors.js';
import { ID_PREFIX, newId } from '../src/domain/ids.js';
import { Kysely, sql } from 'kysely';
import { checkFence } from '../src/store/cluster-repository.js';
import { createAdapter } from '../src/store/dialect/index.js';
import type { Database } from '../src/store/schema.js';
import { MigrationError, openStore, type Store } from '../src/store/store.js';
import { runCli } from './helpers/cli-process.js';
import { dropDatabaseFor, freshDatabaseUrl, inspectDatabase, locationOf, onPostgres } from './helpers/database.js';

const NOW = Date.parse('2026-03-15T10:30:00.123Z');
const iso = (ms: number) => new Date(ms).toISOString();

interface Implementation {
  name: string;
  open(): Promise<Store>;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function openFresh(kind: 'sqlite' | 'postgres'): Promise<Store> {
  const dir = mkdtempSync(join(tmpdir(), 'alerts-repo-'));
  const url = kind === 'sqlite' ? join(dir, 'alerts.db') : await freshDatabaseUrl(dir);
  const store = await openStore({ location: locationOf(url), deliveryAttempts: 3 });
  cleanups.push(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
    await dropDatabaseFor(dir);
  });
  return store;
}

const implementations: Implementation[] = [{ name: 'SQLite', open: () => openFresh('sqlite') }];
if (onPostgres) implementations.push({ name: 'PostgreSQL', open: () => openFresh('postgres') });

function ruleRow(overrides: Record<string, unknown> = {}) {
  return {
    id: newId(ID_PREFIX.alertRule),
    name: 'p95 latency',
    project_id: 'proj_a',
    metric: 'turn_latency_p95' as const,
    operator: '>=' as const,
    threshold_value: 1500,
    window_duration: '5m' as const,
    enabled: true,
    current_state: 'unknown' as const,
    since: null,
    created_at: iso(NOW),
    ...overrides,
  };
}

function endpointRow(overrides: Record<string, unknown> = {}) {
  return {
    id: newId(ID_PREFIX.webhookEndpoint),
    name: 'ops',
    url: 'https://hooks.example.test/in',
    event_types: ['alerts.triggered' as const, 'alerts.resolved' as const],
    headers: { 'X-Team': 'ops ✓' },
    timeout_ms: 5000,
    enabled: true,
    created_at: iso(NOW),
    ...overrides,
  };
}

describe.each(implementations)('a new $name database', ({ name }) => {
  it('migrated by three `alerts migrate` processes at once is migrated once, and all three succeed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'alerts-repo-'));
    const url = name === 'SQLite' ? join(dir, 'alerts.db') : await freshDatabaseUrl(dir);
    cleanups.push(async () => {
      rmSync(dir, { recursive: true, force: true });
      await dropDatabaseFor(dir);
    });
    const runs = await Promise.all([1, 2, 3].map(() => runCli(['migrate'], { cwd: dir, env: { DATABASE_URL: url } })));
    expect(runs.map((run) => run.code)).toEqual([0, 0, 0]);
    const outputs = runs.map((run) => run.stdout);
    // Exactly one applied the migrations; the others waited for its lock and found the schema current.
    expect(outputs.filter((out) => /^Applied \d+ migration/.test(out))).toHaveLength(1);
    expect(outputs.filter((out) => /is up to date at/.test(out))).toHaveLength(2);

    const store = await openStore({ location: locationOf(url) });
    cleanups.push(() => store.close());
    expect(store.schema.applied).toEqual([]);
  });
});

describe.each(implementations)('the $name store', ({ open }) => {
  it('refuses to open a database migrated by a newer version, naming what it does not know, and changes nothing', async () => {
    const store = await open();
    await sql`insert into kysely_migration (name, timestamp) values ('9999-from-the-future', '2030-01-01T00:00:00.000Z')`.execute(store.db);
    // One pending migration makes the runner take the lock and look at what is applied.
    await sql`delete from kysely_migration where name = '0009-telemetry-idempotency'`.execute(store.db);
    const reopened = openStore({ location: locationOf(store.location) });
    await expect(reopened).rejects.toBeInstanceOf(MigrationError);
    await expect(reopened).rejects.toThrow(/newer than this version of alerts \(it has 9999-from-the-future\)/);
    const names = (await sql<{ name: string }>`select name from kysely_migration order by name`.execute(store.db)).rows.map((r) => r.name);
    expect(names).toContain('9999-from-the-future');
    expect(names).not.toContain('0009-telemetry-idempotency');
  });

  it('round-trips booleans, integers beyond 2^31, timestamps with milliseconds and JSON text exactly', async () => {
    const store = await open();
    const account = await store.accounts.ensure('acme', iso(NOW));
    const big = 2 ** 40 + 7;
    const rule = await store.alertRules.insertWithinLimit(account.id, ruleRow({ threshold_value: big, enabled: false }), 10);
    if (rule === 'limit_exceeded') throw new Error('limit');
    const read = await store.alertRules.get(account.id, rule.id);
    expect(read).toMatchObject({ threshold_value: big, enabled: false, created_at: '2026-03-15T10:30:00.123Z', current_value: null });
    expect(typeof read!.threshold_value).toBe('number');

    await store.alertRules.saveEvaluation(account.id, rule.id, {
      current_state: 'alert',
      since: iso(NOW + 1),
      last_evaluated_at: iso(NOW + 1),
      current_value: 2 ** 33,
    });
    expect(await store.alertRules.get(account.id, rule.id)).toMatchObject({ current_state: 'alert', current_value: 2 ** 33, since: '2026-03-15T10:30:00.124Z' });

    const endpoint = await store.webhookEndpoints.insertWithinLimit(account.id, endpointRow(), 'whsec_x', 10);
    if (endpoint === 'limit_exceeded') throw new Error('limit');
    expect(await store.webhookEndpoints.get(account.id, endpoint.id)).toEqual(endpoint);
    expect(endpoint).toMatchObject({ enabled: true, headers: { 'X-Team': 'ops ✓' }, event_types: ['alerts.triggered', 'alerts.resolved'] });
  });

  it('stores the exact bytes of an event payload and gives its deliveries epoch-millisecond times as numbers', async () => {
    const store = await open();
    const account = await store.accounts.ensure('acme', iso(NOW));
    const rule = await store.alertRules.insertWithinLimit(account.id, ruleRow(), 10);
    const endpoint = await store.webhookEndpoints.insertWithinLimit(account.id, endpointRow(), 'whsec_x', 10);
    if (rule === 'limit_exceeded' || endpoint === 'limit_exceeded') throw new Error('limit');
    const payload = '{"event_type":"alerts.triggered","data":{"name":"caf\u00e9 \u{1F525}","value":1.5e3,"nested":{"a":[1,2,3]}}}';
    const event = { id: newId(ID_PREFIX.event), account_id: account.id, rule_id: rule.id, event_type: 'alerts.triggered' as const, payload, created_at: iso(NOW) };
    await store.alertRules.saveEvaluation(account.id, rule.id, { current_state: 'alert', since: iso(NOW), last_evaluated_at: iso(NOW), current_value: 1600 }, event);
    expect((await store.alertEvents.list(account.id))[0]!.payload).toBe(payload);

    const [delivery] = await store.deliveries.list(account.id, endpoint.id, {}, 10);
    expect(delivery).toMatchObject({ status: 'pending', attempts: 0, max_attempts: 3, next_attempt_at: NOW });
    expect(typeof delivery!.next_attempt_at).toBe('number');

    const room = { forEndpoint: () => 8, forAccount: () => 8, fullEndpoints: [], fullAccounts: [], limits: { perEndpoint: 8 } };
    const claimed = await store.deliveries.claimDue('instance-a', NOW, 10, 30_000, room);
    expect(claimed).toHaveLength(1);
    expect(claimed[0]).toMatchObject({ payload, attempts: 1, status: 'in_flight', headers: { 'X-Team': 'ops ✓' }, timeout_ms: 5000 });
    expect(await store.deliveries.claimDue('instance-a', NOW, 10, 30_000, room)).toEqual([]);
  });

  it('writes a transition only under the current fence of its shard: a stale epoch writes nothing, neither state nor event nor delivery', async () => {
    const store = await open();
    const account = await store.accounts.ensure('acme', iso(NOW));
    const rule = await store.alertRules.insertWithinLimit(account.id, ruleRow(), 10);
    const endpoint = await store.webhookEndpoints.insertWithinLimit(account.id, endpointRow(), 'whsec_x', 10);
    if (rule === 'limit_exceeded' || endpoint === 'limit_exceeded') throw new Error('limit');
    const shard = shardOf(account.id);
    const fenceOf = (owner: string, held: { shard: number; epoch: number }[]) => ({ owner, shard, epoch: held.find((h) => h.shard === shard)!.epoch });
    const eventFor = () => ({ id: newId(ID_PREFIX.event), account_id: account.id, rule_id: rule.id, event_type: 'alerts.triggered' as const, payload: '{}', created_at: iso(NOW) });
    const firing = { current_state: 'alert' as const, since: iso(NOW), last_evaluated_at: iso(NOW), current_value: 2000 };

    // A held every shard, then gave them up; B took them, with the next epoch.
    const heldByA = await store.cluster.acquire('instance-a', 64, 60_000);
    const stale = fenceOf('instance-a', heldByA);
    await store.cluster.release('instance-a', heldByA);
    const current = fenceOf('instance-b', await store.cluster.acquire('instance-b', 64, 60_000));
    expect(current.epoch).toBe(stale.epoch + 1);

    const refused = store.alertRules.saveEvaluation(account.id, rule.id, firing, eventFor(), stale);
    await expect(refused).rejects.toBeInstanceOf(FencedError);
    await expect(store.alertRules.saveEvaluations([{ accountId: account.id, id: rule.id, evaluation: firing }], stale)).rejects.toBeInstanceOf(FencedError);
    expect(await store.alertRules.get(account.id, rule.id)).toMatchObject({ current_state: 'unknown', current_value: null });
    expect(await store.alertEvents.list(account.id)).toEqual([]);
    expect(await store.deliveries.list(account.id, endpoint.id, {}, 10)).toEqual([]);

    expect(await store.alertRules.saveEvaluation(account.id, rule.id, firing, eventFor(), current)).toBe(true);
    expect(await store.alertRules.get(account.id, rule.id)).toMatchObject({ current_state: 'alert', current_value: 2000 });
    expect(await store.alertEvents.list(account.id)).toHaveLength(1);
    expect(await store.deliveries.list(account.id, endpoint.id, {}, 10)).toHaveLength(1);
  });

  it("adds a transition to the rule's history only with its state change: not under a stale fence, not for a missing or (with an event) disabled rule; pages newest first by seq; deleted with the rule", async () => {
    const store = await open();
    const account = await store.accounts.ensure('acme', iso(NOW));
    const rule = await store.alertRules.insertWithinLimit(account.id, ruleRow(), 10);
    const other = await store.alertRules.insertWithinLimit(account.id, ruleRow({ enabled: false }), 10);
    if (rule === 'limit_exceeded' || other === 'limit_exceeded') throw new Error('limit');
    const shard = shardOf(account.id);
    const big = 2 ** 40 + 1;
    const transition = (i: number, event?: { id: string; event_type: 'alerts.triggered' }) => ({
      from_state: 'ok' as const,
      to_state: 'alert' as const,
      value: big + i,
      at: iso(NOW + i),
      event_id: event?.id ?? null,
      event_type: event?.event_type ?? null,
      threshold_value: big,
      operator: '>=' as const,
      window_duration: '60m' as const,
    });
    const firing = (i: number) => ({ current_state: 'alert' as const, since: iso(NOW + i), last_evaluated_at: iso(NOW + i), current_value: big + i });
    const eventFor = (ruleId: string) => ({ id: newId(ID_PREFIX.event), account_id: account.id, rule_id: ruleId, event_type: 'alerts.triggered' as const, payload: '{}', created_at: iso(NOW) });

    const heldByA = await store.cluster.acquire('instance-a', 64, 60_000);
    const stale = { owner: 'instance-a', shard, epoch: heldByA.find((h) => h.shard === shard)!.epoch };
    await store.cluster.release('instance-a', heldByA);
    await expect(store.alertRules.saveEvaluation(account.id, rule.id, firing(0), undefined, stale, transition(0))).rejects.toBeInstanceOf(FencedError);
    expect(await store.alertRules.saveEvaluation(account.id, 'ar_missing', firing(0), undefined, undefined, transition(0))).toBe(false);
    const disabledEvent = eventFor(other.id);
    expect(await store.alertRules.saveEvaluation(account.id, other.id, firing(0), disabledEvent, undefined, transition(0, disabledEvent))).toBe(false);
    expect(await store.ruleHistory.page(account.id, rule.id, 10)).toEqual([]);
    expect(await store.ruleHistory.page(account.id, other.id, 10)).toEqual([]);

    const event = eventFor(rule.id);
    expect(await store.alertRules.saveEvaluation(account.id, rule.id, firing(1), event, undefined, transition(1, event))).toBe(true);
    for (const i of [2, 3, 4]) await store.alertRules.saveEvaluation(account.id, rule.id, firing(i), undefined, undefined, transition(i));
    // Without a transition (a value written again), nothing is added.
    await store.alertRules.saveEvaluation(account.id, rule.id, firing(5));
    await store.alertRules.saveEvaluation(account.id, other.id, firing(6), undefined, undefined, transition(6));

    const page = await store.ruleHistory.page(account.id, rule.id, 3);
    expect(page.map((r) => r.at)).toEqual([iso(NOW + 4), iso(NOW + 3), iso(NOW + 2)]);
    expect(page[0]).toEqual({ seq: expect.any(Number), silence_id: null, ...transition(4) });
    const rest = await store.ruleHistory.page(account.id, rule.id, 3, page.at(-1)!.seq);
    expect(rest).toEqual([{ seq: expect.any(Number), silence_id: null, ...transition(1, event) }]);
    expect(rest[0]!.seq).toBeLessThan(page.at(-1)!.seq);
    expect(await store.ruleHistory.page('acc_other', rule.id, 10)).toEqual([]);

    expect(await store.alertRules.delete(account.id, rule.id)).toBe(true);
    expect(await store.ruleHistory.page(account.id, rule.id, 10)).toEqual([]);
    expect(await store.ruleHistory.page(account.id, other.id, 10)).toHaveLength(1);
  });

  it('holds back the deliveries of an event when a silence matching the rule applies at its time (the event and its history row, naming the silence, are still written); ends and the limit hold', async () => {
    const store = await open();
    const account = await store.accounts.ensure('acme', iso(NOW));
    const globex = await store.accounts.ensure('globex', iso(NOW));
    const rule = await store.alertRules.insertWithinLimit(account.id, ruleRow(), 10);
    const endpoint = await store.webhookEndpoints.insertWithinLimit(account.id, endpointRow(), 'whsec_x', 10);
    if (rule === 'limit_exceeded' || endpoint === 'limit_exceeded') throw new Error('limit');
    const silence = (overrides: Record<string, unknown>) => ({
      id: newId(ID_PREFIX.silence),
      account_id: account.id,
      rule_id: null,
      project_id: null,
      metric: null,
      starts_at: iso(NOW),
      ends_at: iso(NOW + 60_000),
      comment: 'maintenance ✓',
      created_at: iso(NOW),
      ...overrides,
    });
    const insert = async (overrides: Record<string, unknown>, limit = 100) => {
      const created = await store.silences.insertWithinLimit(silence(overrides), limit, iso(NOW));
      if (created === 'limit_exceeded') throw new Error('limit');
      return created;
    };
    const moves = [
      { current_state: 'alert' as const, event_type: 'alerts.triggered' as const },
      { current_state: 'ok' as const, event_type: 'alerts.resolved' as const },
    ];
    let step = 0;
    const transitionNow = async () => {
      const { current_state, event_type } = moves[step % 2]!;
      step += 1;
      const event = { id: newId(ID_PREFIX.event), account_id: account.id, rule_id: rule.id, event_type, payload: '{}', created_at: iso(NOW) };
      const transition = { from_state: 'ok' as const, to_state: current_state, value: 1, at: iso(NOW), event_id: event.id, event_type, threshold_value: 1500, operator: '>=' as const, window_duration: '5m' as const };
      const evaluation = { current_state, since: iso(NOW), last_evaluated_at: iso(NOW), current_value: 1 };
      expect(await store.alertRules.saveEvaluation(account.id, rule.id, evaluation, event, undefined, transition)).toBe(true);
    };

    // None of these applies to the rule (proj_a, turn_latency_p95) at NOW.
    const other = await insert({ project_id: 'proj_b' });
    const otherMetric = await insert({ metric: 'api_errors' });
    await insert({ rule_id: 'ar_other' });
    await insert({ account_id: globex.id, project_id: 'proj_a' });
    await insert({ project_id: 'proj_a', starts_at: iso(NOW + 1) });
    await insert({ project_id: 'proj_a', starts_at: iso(NOW - 60_000), ends_at: iso(NOW) });
    await transitionNow();
    expect(await store.deliveries.list(account.id, endpoint.id, {}, 10)).toHaveLength(1);
    expect((await store.ruleHistory.page(account.id, rule.id, 1))[0]).toMatchObject({ silence_id: null });

    const held = await insert({ rule_id: rule.id, project_id: 'proj_a', metric: 'turn_latency_p95' });
    expect(held).toEqual(silence({ id: held.id, rule_id: rule.id, project_id: 'proj_a', metric: 'turn_latency_p95' }));
    await transitionNow();
    expect(await store.alertEvents.list(account.id)).toHaveLength(2);
    expect(await store.deliveries.list(account.id, endpoint.id, {}, 10)).toHaveLength(1);
    expect((await store.ruleHistory.page(account.id, rule.id, 1))[0]).toMatchObject({ to_state: 'ok', silence_id: held.id });

    expect((await store.silences.activeAt(account.id, iso(NOW))).map((x) => x.id)).toEqual([other.id, otherMetric.id, expect.any(String), held.id]);
    const page = await store.silences.page(account.id, { limit: 3, active: true, atIso: iso(NOW) });
    expect(page.map((x) => x.id)).toEqual([held.id, expect.any(String), otherMetric.id]);
    expect(await store.silences.page(account.id, { limit: 10, beforeSeq: page.at(-1)!.seq, active: true, atIso: iso(NOW) })).toEqual([{ ...other, seq: expect.any(Number) }]);
    expect(await store.silences.page(account.id, { limit: 10, active: false, atIso: iso(NOW) })).toHaveLength(2);

    // Ended a second later: kept, with that end; ending again changes nothing; other accounts see nothing.
    expect(await store.silences.end(globex.id, held.id, iso(NOW + 1000))).toBeUndefined();
    expect(await store.silences.end(account.id, held.id, iso(NOW + 1000))).toEqual({ ...held, ends_at: iso(NOW + 1000) });
    expect(await store.silences.end(account.id, held.id, iso(NOW + 2000))).toEqual({ ...held, ends_at: iso(NOW + 1000) });
    expect(await store.silences.get(account.id, held.id)).toEqual({ ...held, ends_at: iso(NOW + 1000) });
    expect(await store.silences.get(globex.id, held.id)).toBeUndefined();

    // The limit counts the silences that have not ended, and holds under concurrency.
    const fresh = await store.accounts.ensure('initech', iso(NOW));
    const outcomes = await Promise.all(
      Array.from({ length: 6 }, () => store.silences.insertWithinLimit(silence({ account_id: fresh.id, project_id: 'p' }), 4, iso(NOW))),
    );
    expect(outcomes.filter((o) => o === 'limit_exceeded')).toHaveLength(2);
    expect(await store.silences.activeAt(fresh.id, iso(NOW))).toHaveLength(4);

    // Pruned after the cut-off: ended ones only.
    expect(await store.retention.pruneSilences(iso(NOW + 1000), 10)).toBe(1); // the one that ended at NOW
    expect(await store.retention.pruneSilences(iso(NOW + 1001), 10)).toBe(1); // held, ended at NOW + 1 s
    expect(await store.silences.get(account.id, held.id)).toBeUndefined();
  });

  it('lists in creation order and filters the same way', async () => {
    const store = await open();
    const account = await store.accounts.ensure('acme', iso(NOW));
    const names = ['c', 'a', 'b', 'e', 'd'];
    for (const [i, name] of names.entries()) {
      await store.alertRules.insertWithinLimit(account.id, ruleRow({ name, metric: i % 2 === 0 ? 'call_volume' : 'turn_latency_p95' }), 10);
    }
    expect((await store.alertRules.list(account.id, {})).map((r) => r.name)).toEqual(names);
    expect((await store.alertRules.list(account.id, { metric: 'call_volume' })).map((r) => r.name)).toEqual(['c', 'b', 'd']);
  });

  it('never lets 20 concurrent creates make an 11th rule or endpoint of one account', async () => {
    const store = await open();
    const account = await store.accounts.ensure('acme', iso(NOW));
    const rules = await Promise.all(Array.from({ length: 20 }, () => store.alertRules.insertWithinLimit(account.id, ruleRow(), 10)));
    expect(rules.filter((r) => r !== 'limit_exceeded')).toHaveLength(10);
    expect(await store.alertRules.list(account.id, {})).toHaveLength(10);
    const endpoints = await Promise.all(
      Array.from({ length: 20 }, (_, i) => store.webhookEndpoints.insertWithinLimit(account.id, endpointRow({ name: `e${i}` }), 'whsec_x', 10)),
    );
    expect(endpoints.filter((e) => e !== 'limit_exceeded')).toHaveLength(10);
    expect(await store.webhookEndpoints.list(account.id, {})).toHaveLength(10);
  });

  it('turns a unique violation into a conflict error, never an unexplained failure', async () => {
    const store = await open();
    const account = await store.accounts.ensure('acme', iso(NOW));
    const row = ruleRow();
    await store.alertRules.insertWithinLimit(account.id, row, 10);
    const again = store.alertRules.insertWithinLimit(account.id, row, 10);
    await expect(again).rejects.toBeInstanceOf(AppError);
    await expect(again).rejects.toMatchObject({ code: 'conflict', status: 409 });
    // The failed transaction changed nothing.
    expect(await store.alertRules.list(account.id, {})).toHaveLength(1);
  });

  it('gives telemetry batches increasing sequence numbers in the order given and answers a replayed idempotency key', async () => {
    const store = await open();
    const account = await store.accounts.ensure('acme', iso(NOW));
    const claim = { key: 'k1', bodySha256: 'ab'.repeat(32), accepted: 3, expiredBefore: NOW - 86_400_000 };
    const outcomes = await store.telemetry.record([
      { accountId: account.id, receivedAt: NOW, deltas: '[1]', projects: ['p1'] },
      { accountId: account.id, receivedAt: NOW + 1, deltas: '[2]', projects: ['p1', 'p2'], idempotency: claim },
      { accountId: account.id, receivedAt: NOW + 2, deltas: '[3]', projects: [], idempotency: claim },
    ]);
    const [a, b, c] = outcomes as [{ shard: number; shardSeq: number }, { shard: number; shardSeq: number }, { replayOf: unknown }];
    expect(a).toEqual({ shard: shardOf(account.id), shardSeq: 1 });
    expect(b).toEqual({ shard: shardOf(account.id), shardSeq: 2 });
    expect(c).toEqual({ replayOf: { body_sha256: claim.bodySha256, accepted: 3, created_at: NOW + 1 } });
    const batches = await store.telemetry.shardBatchesSince(shardOf(account.id), NOW - 1, 0, 10);
    expect(batches.map((x) => x.deltas)).toEqual(['[1]', '[2]']);
    expect(batches[0]).toMatchObject({ account_id: account.id, received_at: NOW });
    expect((await store.telemetry.lastSeen([{ account_id: account.id, project_key: 'p2' }]))[0]).toMatchObject({ last_seen_at: NOW + 1 });
    // Only rolled-up batches are pruned: none yet; then the first is rolled up.
    expect(await store.telemetry.pruneBefore(NOW + 1)).toBe(0);
    expect(await store.telemetryRollups.fold(shardOf(account.id), 0, 1, { seconds: [], minutes: [] })).toBe(true);
    expect(await store.telemetry.pruneBefore(NOW + 2)).toBe(1);
  });

  it('takes many scopes in one batch, beyond one statement’s parameter limit', async () => {
    const store = await open();
    const account = await store.accounts.ensure('acme', iso(NOW));
    const projects = Array.from({ length: 12_000 }, (_, i) => `proj_${i}`);
    await store.telemetry.record([{ accountId: account.id, receivedAt: NOW, deltas: '[]', projects }]);
    const seen = await store.telemetry.lastSeen(projects.slice(-700).map((project_key) => ({ account_id: account.id, project_key })));
    expect(seen).toHaveLength(700);
  });
});

describe.runIf(onPostgres)('a PostgreSQL session frozen inside a transaction', () => {
  it("does not keep its shard: the server ends the session after the stalled-transaction timeout, the lease is taken, and the frozen writer's transaction is undone", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'alerts-repo-'));
    const url = await freshDatabaseUrl(dir);
    const taker = await openStore({ location: locationOf(url) });
    // The frozen instance's connections, as the service opens them but with a 1 s timeout.
    const adapter = createAdapter(locationOf(url), { failure: undefined }, { stalledTransactionTimeoutMs: 1000 });
    const frozen = new Kysely<Database>({ dialect: adapter.dialect });
    cleanups.push(async () => {
      await frozen.destroy();
      await taker.close();
      rmSync(dir, { recursive: true, force: true });
      await dropDatabaseFor(dir);
    });
    const [held] = await taker.cluster.acquire('frozen', 1, 300);
    const fence = { owner: 'frozen', shard: held!.shard, epoch: held!.epoch };
    let lockHeld!: () => void;
    const locked = new Promise<void>((resolve) => (lockHeld = resolve));
    const write = frozen.transaction().execute(async (trx) => {
      await checkFence(trx, adapter, fence);
      lockHeld();
      // Frozen: the lease runs out while the transaction holds its row in share mode.
      await new Promise((resolve) => setTimeout(resolve, 2500));
      await trx.insertInto('accounts').values({ id: 'acct_frozen', name: 'written while frozen', created_at: iso(NOW) }).execute();
    });
    const undone = expect(write).rejects.toThrow();
    await locked;
    const started = Date.now();
    let taken: { shard: number; epoch: number }[] = [];
    while (taken.length === 0 && Date.now() - started < 10_000) {
      // The lease expired after 300 ms, but a locked row is skipped until the session ends.
      taken = (await taker.cluster.acquire('taker', 64, 60_000)).filter((t) => t.shard === fence.shard);
      if (taken.length === 0) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(taken, 'the shard was never taken while its old owner was frozen').toHaveLength(1);
    expect(Date.now() - started).toBeLessThan(2500);
    expect(taken[0]!.epoch).toBe(fence.epoch + 1);
    await undone;
    const db = inspectDatabase(url);
    try {
      expect(await db.selectFrom('accounts').select('id').where('id', '=', 'acct_frozen').execute()).toEqual([]);
    } finally {
      await db.destroy();
    }
  });
});
