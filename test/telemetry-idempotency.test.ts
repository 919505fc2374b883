/**
 * Idempotency-Key on POST /v1/telemetry/events: a sender that retries a batch after a
 * timeout must not have it counted twice, even when the retries race each other or the
 * service restarted in between.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { dropDatabaseFor } from './helpers/database.js';
import { startTestServer, testClock, type TestServer } from './helpers/server.js';

const START = Date.parse('2026-03-15T10:30:00.000Z');
const HOUR = 3_600_000;
const iso = (ms: number) => new Date(ms).toISOString();

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function server(options: { clock?: ReturnType<typeof testClock>; dir?: string } = {}): Promise<TestServer> {
  const s = await startTestServer({ clock: options.clock ?? testClock(START), dir: options.dir });
  cleanups.push(() => s.close());
  return s;
}

const BATCH = { events: [{ type: 'call' }, { type: 'call' }, { type: 'call', project_id: 'proj_a' }] };

function send(s: TestServer, body: unknown, idempotencyKey?: string, key?: string) {
  return s.request('POST', '/v1/telemetry/events', { body, key, headers: idempotencyKey === undefined ? {} : { 'idempotency-key': idempotencyKey } });
}

/** A rule counting the account's calls over 60 minutes: what was counted, exactly. */
async function callCounter(s: TestServer, key?: string): Promise<() => Promise<number>> {
  const res = await s.request('POST', '/v1/alert-rules', {
    key,
    body: { name: 'calls', metric: 'call_volume', operator: '>', threshold_value: 1_000_000, window_duration: '60m' },
  });
  expect(res.status, res.text).toBe(201);
  return async () => (await s.request('GET', `/v1/alert-rules/${res.body.id}`, { key })).body.current_value as number;
}

const storedBatches = async (s: TestServer) =>
  Number((await sql<{ n: number }>`select count(*) as n from telemetry_batches`.execute(s.service.store.db)).rows[0]!.n);

describe('Idempotency-Key', () => {
  it('answers a repeated batch with the first answer and does not count it again', async () => {
    const s = await server();
    const calls = await callCounter(s);
    const first = await send(s, BATCH, 'batch-0001');
    expect(first.status).toBe(202);
    expect(first.body).toEqual({ accepted: 3 });
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    const again = await send(s, BATCH, 'batch-0001');
    expect(again.status).toBe(202);
    expect(again.body).toEqual({ accepted: 3 });
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await calls()).toBe(3);
    expect(await storedBatches(s)).toBe(1);

    // Without a key, or with another one, a batch counts as usual.
    expect((await send(s, BATCH)).status).toBe(202);
    expect((await send(s, BATCH, 'batch-0002')).status).toBe(202);
    expect(await calls()).toBe(9);
  });

  it('refuses the same key with a different batch with 409, and stores nothing of it', async () => {
    const s = await server();
    const calls = await callCounter(s);
    expect((await send(s, BATCH, 'k-1')).status).toBe(202);
    const other = await send(s, { events: [{ type: 'call' }] }, 'k-1');
    expect(other.status).toBe(409);
    expect(other.body.message).toMatch(/Idempotency-Key was used .* for a different batch/);
    expect(await calls()).toBe(3);
    expect(await storedBatches(s)).toBe(1);
  });

  it('keeps keys per account', async () => {
    const s = await server();
    const other = await s.newKey('globex');
    const mine = await callCounter(s);
    const theirs = await callCounter(s, other);
    expect((await send(s, BATCH, 'shared-key')).status).toBe(202);
    const res = await send(s, { events: [{ type: 'call' }] }, 'shared-key', other);
    expect(res.status).toBe(202);
    expect(res.headers.get('idempotent-replayed')).toBeNull();
    expect([await mine(), await theirs()]).toEqual([3, 1]);
  });

  it('counts a batch once when its retries arrive at the same time', async () => {
    const s = await server();
    const calls = await callCounter(s);
    const answers = await Promise.all(Array.from({ length: 12 }, () => send(s, BATCH, 'racing')));
    expect(answers.map((a) => [a.status, a.body.accepted])).toEqual(Array.from({ length: 12 }, () => [202, 3]));
    expect(answers.filter((a) => a.headers.get('idempotent-replayed') === 'true')).toHaveLength(11);
    expect(await calls()).toBe(3);
    expect(await storedBatches(s)).toBe(1);
  });

  it('still recognises the batch after a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'alerts-idempotency-'));
    cleanups.push(async () => {
      rmSync(dir, { recursive: true, force: true });
      await dropDatabaseFor(dir);
    });
    const clock = testClock(START);
    const first = await startTestServer({ clock, dir });
    const calls1 = await callCounter(first);
    expect((await send(first, BATCH, 'survives-restart')).status).toBe(202);
    expect(await calls1()).toBe(3);
    await first.close();

    clock.advance(60_000);
    const second = await server({ clock, dir });
    const res = await send(second, BATCH, 'survives-restart');
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ accepted: 3 });
    expect(res.headers.get('idempotent-replayed')).toBe('true');
    const rule = (await second.request('GET', '/v1/alert-rules')).body.data[0];
    expect(rule.current_value).toBe(3);
    expect(await storedBatches(second)).toBe(1);
  });

  it('answers a repeat even when its events have since grown too old to be accepted anew', async () => {
    const clock = testClock(START);
    const s = await server({ clock });
    const old = { events: [{ type: 'call', timestamp: iso(START - 59 * 60_000) }] };
    expect((await send(s, old, 'late-retry')).status).toBe(202);
    clock.advance(5 * 60_000);
    const res = await send(s, old, 'late-retry');
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ accepted: 1 });
  });

  it('forgets keys after 24 hours: the batch counts again, and old keys are pruned', async () => {
    const clock = testClock(START);
    const s = await server({ clock });
    const calls = await callCounter(s);
    expect((await send(s, BATCH, 'daily')).status).toBe(202);
    clock.advance(24 * HOUR - 1000);
    expect((await send(s, BATCH, 'daily')).headers.get('idempotent-replayed')).toBe('true');
    await s.service.engine.tick();
    expect(await calls()).toBe(0); // the first batch left the 60 minute window long ago
    clock.advance(2000);
    const res = await send(s, BATCH, 'daily');
    expect(res.status).toBe(202);
    expect(res.headers.get('idempotent-replayed')).toBeNull();
    expect(await calls()).toBe(3);

    const keys = async () => (await s.service.store.db.selectFrom('telemetry_idempotency_keys').select(['key', 'created_at']).execute()).map((r) => r.key);
    expect((await send(s, BATCH, 'other')).status).toBe(202);
    expect(await keys()).toEqual(['daily', 'other']);
    clock.advance(24 * HOUR + 1000);
    await s.service.engine.tick();
    expect(await keys()).toEqual([]);
  });

  it('is 1 to 255 printable ASCII characters, else 400 naming the header', async () => {
    const s = await server();
    const calls = await callCounter(s);
    for (const bad of ['', 'x'.repeat(256), 'caf\u00e9', 'tab\there']) {
      const res = await send(s, BATCH, bad);
      expect(res.status, JSON.stringify(bad)).toBe(400);
      expect(res.body.errors).toEqual([{ field: 'Idempotency-Key', message: 'must be 1 to 255 printable ASCII characters' }]);
    }
    expect(await calls()).toBeNull(); // no telemetry at all: no_data
    for (const good of ['x'.repeat(255), 'a b ~!@#$%^&*()', '550e8400-e29b-41d4-a716-446655440000']) {
      expect((await send(s, BATCH, good)).status, good).toBe(202);
    }
    expect(await calls()).toBe(9);
  });

  it('is documented on the operation in /openapi.json', async () => {
    const s = await server();
    const doc = (await s.request('GET', '/openapi.json', { key: null })).body;
    const parameters = doc.paths['/v1/telemetry/events'].post.parameters as { name: string; in: string; required?: boolean; schema: any; description?: string }[];
    const header = parameters.find((p) => p.in === 'header' && p.name.toLowerCase() === 'idempotency-key');
    expect(header).toBeDefined();
    expect(header!.required ?? false).toBe(false);
    expect(header!.schema).toMatchObject({ type: 'string', minLength: 1, maxLength: 255 });
    expect(JSON.stringify(header)).toMatch(/24 hours/);
    expect(doc.paths['/v1/telemetry/events'].post.responses['409']).toBeDefined();
  });
});
