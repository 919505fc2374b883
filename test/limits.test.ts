import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { endpointBody, ruleBody, snapshotDatabase, startTestServer, testClock, type TestServer } from './helpers/server.js';

/** An account holds at most 10 alert rules and 10 webhook endpoints; one more is 409. */

let server: TestServer;
const clock = testClock();
const LIMIT = 10;

beforeEach(async () => {
  server = await startTestServer({ clock });
});
afterEach(async () => {
  await server.close();
});

const kinds = [
  {
    kind: 'alert rules',
    path: '/v1/alert-rules',
    body: (i: number, overrides: Record<string, unknown> = {}) => ruleBody({ name: `rule ${i}`, ...overrides }),
    limitMessage: /alert rule.*10|10.*alert rule/,
  },
  {
    kind: 'webhook endpoints',
    path: '/v1/webhook-endpoints',
    body: (i: number, overrides: Record<string, unknown> = {}) => endpointBody({ name: `endpoint ${i}`, ...overrides }),
    limitMessage: /webhook endpoint.*10|10.*webhook endpoint/,
  },
];

describe.each(kinds)('the limit of 10 $kind per account', ({ path, body, limitMessage }) => {
  async function fill(key = server.key): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < LIMIT; i++) {
      const res = await server.request('POST', path, { key, body: body(i) });
      expect(res.status).toBe(201);
      ids.push(res.body.id);
    }
    return ids;
  }

  it('creates 10, then answers 409 with a message for the 11th and stores nothing', async () => {
    await fill();
    const before = await snapshotDatabase(server.service);
    const res = await server.request('POST', path, { body: body(LIMIT) });
    expect(res.status).toBe(409);
    expect(res.body.message).toMatch(limitMessage);
    expect(await snapshotDatabase(server.service)).toEqual(before);
    expect((await server.request('GET', path)).body.data).toHaveLength(LIMIT);
  });

  it('keeps answering 409 for every further create, not only the 11th', async () => {
    await fill();
    for (let i = 0; i < 3; i++) {
      expect((await server.request('POST', path, { body: body(LIMIT + i) })).status).toBe(409);
    }
    expect((await server.request('GET', path)).body.data).toHaveLength(LIMIT);
  });

  it('counts disabled ones too', async () => {
    for (let i = 0; i < LIMIT; i++) {
      expect((await server.request('POST', path, { body: body(i, { enabled: false }) })).status).toBe(201);
    }
    expect((await server.request('POST', path, { body: body(LIMIT) })).status).toBe(409);
  });

  it('answers 400, not 409, for an invalid body at the limit (validation comes first)', async () => {
    await fill();
    const res = await server.request('POST', path, { body: body(LIMIT, { unknown_field: true }) });
    expect(res.status).toBe(400);
  });

  it('lets 20 concurrent creates make exactly 10 (201 ×10, 409 ×10)', async () => {
    const results = await Promise.all(Array.from({ length: 2 * LIMIT }, (_, i) => server.request('POST', path, { body: body(i) })));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([...Array(LIMIT).fill(201), ...Array(LIMIT).fill(409)]);
    for (const r of results.filter((r) => r.status === 409)) expect(r.body.message).toMatch(limitMessage);
    const listed = (await server.request('GET', path)).body.data as { id: string }[];
    expect(listed).toHaveLength(LIMIT);
    const createdIds = results.filter((r) => r.status === 201).map((r) => r.body.id as string);
    expect(new Set(listed.map((item) => item.id))).toEqual(new Set(createdIds));
  });

  it('never exceeds 10 when concurrent creates start from 7 existing', async () => {
    for (let i = 0; i < 7; i++) await server.request('POST', path, { body: body(i) });
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => server.request('POST', path, { body: body(100 + i) })));
    expect(results.filter((r) => r.status === 201)).toHaveLength(3);
    expect(results.filter((r) => r.status === 409)).toHaveLength(9);
    expect((await server.request('GET', path)).body.data).toHaveLength(LIMIT);
  });

  it('frees a slot when one is deleted, and only one', async () => {
    const ids = await fill();
    expect((await server.request('DELETE', `${path}/${ids[3]}`)).status).toBe(204);
    const again = await server.request('POST', path, { body: body(99) });
    expect(again.status).toBe(201);
    expect((await server.request('POST', path, { body: body(100) })).status).toBe(409);
    const listed = (await server.request('GET', path)).body.data as { id: string }[];
    expect(listed).toHaveLength(LIMIT);
    expect(listed.map((item) => item.id)).not.toContain(ids[3]);
    expect(listed.map((item) => item.id)).toContain(again.body.id);
  });

  it('lets a deleted slot be taken by exactly one of several concurrent creates', async () => {
    const ids = await fill();
    await server.request('DELETE', `${path}/${ids[0]}`);
    const results = await Promise.all(Array.from({ length: 5 }, (_, i) => server.request('POST', path, { body: body(200 + i) })));
    expect(results.map((r) => r.status).sort()).toEqual([201, 409, 409, 409, 409]);
    expect((await server.request('GET', path)).body.data).toHaveLength(LIMIT);
  });

  it('applies per account: a full account does not stop another one', async () => {
    await fill();
    const otherKey = await server.newKey('globex');
    const res = await server.request('POST', path, { key: otherKey, body: body(0) });
    expect(res.status).toBe(201);
    expect((await server.request('GET', path, { key: otherKey })).body.data).toHaveLength(1);
    expect((await server.request('POST', path, { body: body(LIMIT) })).status).toBe(409);
  });

  it('gives each account its own 10 under concurrent creates from both', async () => {
    const otherKey = await server.newKey('globex');
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => server.request('POST', path, { key: i % 2 === 0 ? server.key : otherKey, body: body(i) })),
    );
    expect(results.filter((r) => r.status === 201)).toHaveLength(2 * LIMIT);
    expect(results.filter((r) => r.status === 409)).toHaveLength(30 - 2 * LIMIT);
    expect((await server.request('GET', path)).body.data).toHaveLength(LIMIT);
    expect((await server.request('GET', path, { key: otherKey })).body.data).toHaveLength(LIMIT);
  });

  it('shares the 10 between two keys of the same account', async () => {
    const secondKey = await server.newKey('acme');
    for (let i = 0; i < LIMIT; i++) {
      const key = i % 2 === 0 ? server.key : secondKey;
      expect((await server.request('POST', path, { key, body: body(i) })).status).toBe(201);
    }
    expect((await server.request('POST', path, { key: secondKey, body: body(LIMIT) })).status).toBe(409);
  });
});

describe('the two limits', () => {
  it('are independent: 10 rules do not use up endpoint slots, nor the reverse', async () => {
    for (let i = 0; i < LIMIT; i++) {
      expect((await server.request('POST', '/v1/alert-rules', { body: ruleBody({ name: `r${i}` }) })).status).toBe(201);
    }
    for (let i = 0; i < LIMIT; i++) {
      expect((await server.request('POST', '/v1/webhook-endpoints', { body: endpointBody({ name: `e${i}` }) })).status).toBe(201);
    }
    expect((await server.request('POST', '/v1/alert-rules', { body: ruleBody() })).status).toBe(409);
    expect((await server.request('POST', '/v1/webhook-endpoints', { body: endpointBody() })).status).toBe(409);
  });

  it('hold under concurrent creates of rules and endpoints mixed together', async () => {
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        i % 2 === 0
          ? server.request('POST', '/v1/alert-rules', { body: ruleBody({ name: `r${i}` }) })
          : server.request('POST', '/v1/webhook-endpoints', { body: endpointBody({ name: `e${i}` }) }),
      ),
    );
    expect(results.filter((r) => r.status === 201)).toHaveLength(2 * LIMIT);
    expect((await server.request('GET', '/v1/alert-rules')).body.data).toHaveLength(LIMIT);
    expect((await server.request('GET', '/v1/webhook-endpoints')).body.data).toHaveLength(LIMIT);
  });
});
