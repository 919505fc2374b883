import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  endpointBody,
  ruleBody,
  snapshotDatabase,
  startSeededServer,
  testClock,
  type RequestOptions,
  type TestServer,
} from './helpers/server.js';

/**
 * Every /v1 route needs a live `x-api-key`; each key sees its own account's resources and
 * nothing else (another account's resource is 404, never 403).
 */

let server: TestServer;
let ruleId: string;
let endpointId: string;
const clock = testClock();

beforeEach(async () => {
  ({ server, ruleId, endpointId } = await startSeededServer(clock));
});
afterEach(async () => {
  await server.close();
});

/** Every /v1 operation, each with a request that would succeed with a good key. */
const routes: { name: string; method: string; path: () => string; options?: RequestOptions }[] = [
  { name: 'list alert rules', method: 'GET', path: () => '/v1/alert-rules' },
  { name: 'create alert rule', method: 'POST', path: () => '/v1/alert-rules', options: { body: ruleBody({ name: 'new' }) } },
  { name: 'get alert rule', method: 'GET', path: () => `/v1/alert-rules/${ruleId}` },
  { name: 'update alert rule', method: 'PATCH', path: () => `/v1/alert-rules/${ruleId}`, options: { body: { name: 'changed' } } },
  { name: 'delete alert rule', method: 'DELETE', path: () => `/v1/alert-rules/${ruleId}` },
  { name: 'list active alerts', method: 'GET', path: () => '/v1/alerts' },
  { name: 'list webhook endpoints', method: 'GET', path: () => '/v1/webhook-endpoints' },
  {
    name: 'create webhook endpoint',
    method: 'POST',
    path: () => '/v1/webhook-endpoints',
    options: { body: endpointBody({ name: 'new' }) },
  },
  { name: 'get webhook endpoint', method: 'GET', path: () => `/v1/webhook-endpoints/${endpointId}` },
  {
    name: 'update webhook endpoint',
    method: 'PATCH',
    path: () => `/v1/webhook-endpoints/${endpointId}`,
    options: { body: { name: 'changed' } },
  },
  { name: 'delete webhook endpoint', method: 'DELETE', path: () => `/v1/webhook-endpoints/${endpointId}` },
  { name: 'rotate signing secret', method: 'POST', path: () => `/v1/webhook-endpoints/${endpointId}/rotate-secret` },
];
/** Not part of the published contract, but a /v1 route all the same. */
const telemetryRoute = {
  name: 'send telemetry',
  method: 'POST',
  path: () => '/v1/telemetry/events',
  options: { body: { events: [{ type: 'call' }] } },
};

async function revokedKey(): Promise<string> {
  const { record, key } = await server.service.apiKeys.create('acme');
  expect(await server.service.apiKeys.revoke(record.id)).toBe(true);
  return key;
}

const badKeys: { what: string; key: () => Promise<string | null> }[] = [
  { what: 'no key', key: async () => null },
  { what: 'an empty key', key: async () => '' },
  { what: 'an unknown key of the right shape', key: async () => 'alk_' + 'A1b2C3d4E5'.repeat(4) + 'xyz' },
  { what: 'a garbage key', key: async () => 'not a key' },
  { what: 'a very long key', key: async () => 'alk_' + 'x'.repeat(4000) },
  { what: 'a revoked key', key: revokedKey },
  { what: 'a valid key with a character changed', key: async () => server.key.slice(0, -1) + (server.key.endsWith('a') ? 'b' : 'a') },
  { what: 'a valid key with surrounding junk', key: async () => `${server.key}x` },
];

describe('a request with the account’s key', () => {
  it.each(routes)('succeeds on $name (so the refusals below are down to the key alone)', async (route) => {
    const res = await server.request(route.method, route.path(), route.options);
    expect(res.status, res.text).toBeLessThan(300);
  });
});

describe.each(badKeys)('a request with $what', ({ key }) => {
  it.each([...routes, telemetryRoute])('is refused with 401 and a message on $name, changing nothing', async (route) => {
    const apiKey = await key();
    const before = await snapshotDatabase(server.service);
    const res = await server.request(route.method, route.path(), { ...route.options, key: apiKey });
    expect(res.status).toBe(401);
    expect(res.body.message).toMatch(/key/i);
    expect(await snapshotDatabase(server.service)).toEqual(before);
  });
});

describe('authentication', () => {
  it('says whether the key was missing or not accepted', async () => {
    expect((await server.request('GET', '/v1/alert-rules', { key: null })).body.message).toMatch(/missing/i);
    expect((await server.request('GET', '/v1/alert-rules', { key: 'alk_' + 'z'.repeat(43) })).body.message).toMatch(/invalid|revoked/i);
  });

  it('accepts the header name in any case (X-API-KEY, X-Api-Key)', async () => {
    for (const name of ['X-API-KEY', 'X-Api-Key', 'x-API-key']) {
      const res = await server.request('GET', '/v1/alert-rules', { key: null, headers: { [name]: server.key } });
      expect(res.status).toBe(200);
      expect(res.body.data).toHaveLength(1);
    }
  });

  it('does not take the key from another header or from the query string', async () => {
    const elsewhere: RequestOptions[] = [
      { key: null, headers: { authorization: `Bearer ${server.key}` } },
      { key: null, headers: { 'x-api-token': server.key } },
    ];
    for (const options of elsewhere) expect((await server.request('GET', '/v1/alert-rules', options)).status).toBe(401);
    expect((await server.request('GET', `/v1/alert-rules?x-api-key=${server.key}`, { key: null })).status).toBe(401);
  });

  it('checks the key before the input: no validation detail leaks to an unauthenticated caller', async () => {
    const cases: [string, string, RequestOptions][] = [
      ['GET', '/v1/alert-rules/bad', {}],
      ['GET', '/v1/alert-rules?enabled=maybe', {}],
      ['POST', '/v1/alert-rules', { body: { nonsense: true } }],
      ['POST', '/v1/alert-rules', { rawBody: 'hello', contentType: 'text/plain' }],
      ['PATCH', `/v1/webhook-endpoints/ar_wrong`, { rawBody: '{', contentType: 'application/json' }],
    ];
    for (const [method, path, options] of cases) {
      const res = await server.request(method, path, { ...options, key: null });
      expect(res.status, `${method} ${path}`).toBe(401);
      expect(res.body.errors).toBeUndefined();
    }
  });

  it('stops a key at once when it is revoked, while the account’s other keys keep working', async () => {
    const { record, key } = await server.service.apiKeys.create('acme');
    expect((await server.request('GET', `/v1/alert-rules/${ruleId}`, { key })).status).toBe(200);
    await server.service.apiKeys.revoke(record.id);
    expect((await server.request('GET', `/v1/alert-rules/${ruleId}`, { key })).status).toBe(401);
    expect((await server.request('GET', `/v1/alert-rules/${ruleId}`)).status).toBe(200);
  });

  it('lets every key of an account see the same resources', async () => {
    const second = await server.newKey('acme');
    const res = await server.request('GET', '/v1/alert-rules', { key: second });
    expect(res.body.data.map((r: { id: string }) => r.id)).toEqual([ruleId]);
    const patched = await server.request('PATCH', `/v1/webhook-endpoints/${endpointId}`, { key: second, body: { name: 'via second key' } });
    expect(patched.status).toBe(200);
    expect((await server.request('GET', `/v1/webhook-endpoints/${endpointId}`)).body.name).toBe('via second key');
  });

  it('does not need a key for /healthz, and ignores a bad one there', async () => {
    for (const key of [null, 'bogus']) {
      const res = await server.request('GET', '/healthz', { key });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ status: 'ok' });
    }
  });
});

describe('account isolation', () => {
  let otherKey: string;
  beforeEach(async () => {
    otherKey = await server.newKey('globex');
  });

  it('shows another account only its own rules and endpoints in every list', async () => {
    const theirs = (await server.request('POST', '/v1/alert-rules', { key: otherKey, body: ruleBody({ name: 'theirs' }) })).body;
    const theirEndpoint = (await server.request('POST', '/v1/webhook-endpoints', { key: otherKey, body: endpointBody({ name: 'theirs' }) }))
      .body;
    const ids = async (path: string, key: string) =>
      (await server.request('GET', path, { key })).body.data.map((x: { id: string }) => x.id);

    expect(await ids('/v1/alert-rules', otherKey)).toEqual([theirs.id]);
    expect(await ids('/v1/alert-rules', server.key)).toEqual([ruleId]);
    expect(await ids('/v1/alert-rules?project_id=proj_abc123', otherKey)).toEqual([theirs.id]);
    expect(await ids(`/v1/alert-rules?enabled=true&metric=turn_latency_p95&state=${theirs.current_state}`, otherKey)).toEqual([theirs.id]);
    expect(await ids('/v1/webhook-endpoints', otherKey)).toEqual([theirEndpoint.id]);
    expect(await ids('/v1/webhook-endpoints?event_type=alerts.triggered&enabled=true', otherKey)).toEqual([theirEndpoint.id]);
    expect(await ids('/v1/webhook-endpoints', server.key)).toEqual([endpointId]);
    expect((await server.request('GET', '/v1/alerts', { key: otherKey })).body.data).toEqual([]);
  });

  it.each([
    ['GET', () => `/v1/alert-rules/${ruleId}`, {}, 'alert rule'],
    ['PATCH', () => `/v1/alert-rules/${ruleId}`, { body: { name: 'hijacked', enabled: false } }, 'alert rule'],
    ['DELETE', () => `/v1/alert-rules/${ruleId}`, {}, 'alert rule'],
    ['GET', () => `/v1/webhook-endpoints/${endpointId}`, {}, 'webhook endpoint'],
    ['PATCH', () => `/v1/webhook-endpoints/${endpointId}`, { body: { url: 'https://attacker.example/x' } }, 'webhook endpoint'],
    ['DELETE', () => `/v1/webhook-endpoints/${endpointId}`, {}, 'webhook endpoint'],
    ['POST', () => `/v1/webhook-endpoints/${endpointId}/rotate-secret`, {}, 'webhook endpoint'],
  ] as const)(
    'answers 404 to %s on another account’s resource, exactly as for one that does not exist, and leaves it unchanged',
    async (method, path, options, _what) => {
      const before = await snapshotDatabase(server.service);
      const target = path();
      const res = await server.request(method, target, { ...options, key: otherKey });
      expect(res.status).toBe(404);
      expect(await snapshotDatabase(server.service)).toEqual(before);

      // No oracle: the answer for a real but foreign ID reads the same as for a made-up one.
      const realId = target.split('/')[3]!;
      const madeUpId = realId.slice(0, realId.indexOf('_') + 1) + '0'.repeat(22);
      const missing = await server.request(method, target.replace(realId, madeUpId), { ...options, key: otherKey });
      expect(missing.status).toBe(404);
      expect(res.body.message.replace(realId, 'ID')).toBe(missing.body.message.replace(madeUpId, 'ID'));
    },
  );

  it('leaves the owner’s rule and endpoint exactly as they were after another account’s attempts', async () => {
    const ruleBefore = (await server.request('GET', `/v1/alert-rules/${ruleId}`)).body;
    const endpointBefore = (await server.request('GET', `/v1/webhook-endpoints/${endpointId}`)).body;
    await server.request('PATCH', `/v1/alert-rules/${ruleId}`, { key: otherKey, body: { threshold_value: 0 } });
    await server.request('DELETE', `/v1/alert-rules/${ruleId}`, { key: otherKey });
    await server.request('PATCH', `/v1/webhook-endpoints/${endpointId}`, { key: otherKey, body: { enabled: false } });
    await server.request('POST', `/v1/webhook-endpoints/${endpointId}/rotate-secret`, { key: otherKey });
    await server.request('DELETE', `/v1/webhook-endpoints/${endpointId}`, { key: otherKey });
    expect((await server.request('GET', `/v1/alert-rules/${ruleId}`)).body).toEqual(ruleBefore);
    expect((await server.request('GET', `/v1/webhook-endpoints/${endpointId}`)).body).toEqual(endpointBefore);
  });

  it('lets each account use the same names and project ids without seeing the other', async () => {
    const mine = await server.request('POST', '/v1/alert-rules', { body: ruleBody({ name: 'same' }) });
    const theirs = await server.request('POST', '/v1/alert-rules', { key: otherKey, body: ruleBody({ name: 'same' }) });
    expect(mine.status).toBe(201);
    expect(theirs.status).toBe(201);
    expect(theirs.body.id).not.toBe(mine.body.id);
    expect((await server.request('GET', `/v1/alert-rules/${theirs.body.id}`)).status).toBe(404);
    expect((await server.request('GET', `/v1/alert-rules/${mine.body.id}`, { key: otherKey })).status).toBe(404);
  });
});
