import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { endpointBody, startTestServer, testClock, type TestServer } from './helpers/server.js';

const START = Date.parse('2026-03-15T10:30:00.000Z');
const clock = testClock(START);
let server: TestServer;

beforeEach(async () => {
  clock.set(START);
  server = await startTestServer({ clock });
});
afterEach(async () => {
  await server.close();
});

const ENDPOINT_ID = /^whe_[A-Za-z0-9]{22}$/;
// Ours beside the published ones: previous_secret_expires_at (null unless a rotation's overlap
// runs), disabled_reason and disabled_at (null unless the service disabled the endpoint).
const ENDPOINT_KEYS = [
  'created_at',
  'disabled_at',
  'disabled_reason',
  'enabled',
  'event_types',
  'headers',
  'id',
  'name',
  'previous_secret_expires_at',
  'timeout_ms',
  'updated_at',
  'url',
];

/**
 * Checks the secret format (letters and digits after whsec_: base64 and base64url alike, see
 * test/standard-webhooks.test.ts) and that it encodes 32 bytes from the random source.
 */
function expectStrongSecret(secret: unknown): void {
  expect(typeof secret).toBe('string');
  const match = /^whsec_([A-Za-z0-9]+)$/.exec(secret as string);
  expect(match, `secret format: ${String(secret)}`).not.toBeNull();
  const random = Buffer.from(match![1]!, 'base64url');
  expect(random.toString('base64url')).toBe(match![1]);
  expect(random.length * 8).toBeGreaterThanOrEqual(256);
}

async function createEndpoint(overrides: Record<string, unknown> = {}, key?: string) {
  const res = await server.request('POST', '/v1/webhook-endpoints', { body: endpointBody(overrides), key });
  expect(res.status, res.text).toBe(201);
  return res.body as Record<string, any> & { id: string; signing_secret: string };
}

function withoutSecret(created: Record<string, unknown>): Record<string, unknown> {
  const { signing_secret: _secret, ...rest } = created;
  return rest;
}

describe('webhook endpoints', () => {
  it('creates an endpoint with a whe_ id of 22 base62 characters, the documented defaults and a signing secret', async () => {
    const res = await server.request('POST', '/v1/webhook-endpoints', { body: endpointBody() });
    expect(res.status).toBe(201);
    expect(res.body.id).toMatch(ENDPOINT_ID);
    expect(Object.keys(res.body).sort()).toEqual([...ENDPOINT_KEYS, 'signing_secret'].sort());
    expect(res.body).toEqual({
      id: res.body.id,
      name: 'Production alerts',
      url: 'https://hooks.example.com/polyai',
      event_types: ['alerts.triggered', 'alerts.resolved'],
      headers: {},
      timeout_ms: 5000,
      enabled: true,
      created_at: '2026-03-15T10:30:00.000Z',
      updated_at: '2026-03-15T10:30:00.000Z',
      previous_secret_expires_at: null,
      disabled_reason: null,
      disabled_at: null,
      signing_secret: res.body.signing_secret,
    });
    expectStrongSecret(res.body.signing_secret);
  });

  it('honours timeout_ms, enabled: false and custom headers given on create', async () => {
    const headers = { 'X-Custom-Header': 'my-value', Authorization: 'Bearer abc.def', 'x-team': 'on call' };
    const created = await createEndpoint({ timeout_ms: 30000, enabled: false, headers, event_types: ['alerts.resolved'] });
    expect(created).toMatchObject({ timeout_ms: 30000, enabled: false, headers, event_types: ['alerts.resolved'] });
    const got = await server.request('GET', `/v1/webhook-endpoints/${created.id}`);
    expect(got.body.headers).toEqual(headers);
    expect(got.body.timeout_ms).toBe(30000);
    expect(got.body.enabled).toBe(false);
  });

  it('gives every endpoint its own id and its own signing secret', async () => {
    const a = await createEndpoint({ name: 'a' });
    const b = await createEndpoint({ name: 'b' });
    expect(a.id).not.toBe(b.id);
    expect(a.signing_secret).not.toBe(b.signing_secret);
    expectStrongSecret(b.signing_secret);
  });

  it('keeps the secret it returned on create as the one used for signing', async () => {
    const created = await createEndpoint();
    expect(await server.service.store.webhookEndpoints.signingSecret(created.id)).toBe(created.signing_secret);
  });

  it('de-duplicates repeated event types, keeping the first occurrence of each', async () => {
    const created = await createEndpoint({ event_types: ['alerts.resolved', 'alerts.triggered', 'alerts.resolved', 'alerts.triggered'] });
    expect(created.event_types).toEqual(['alerts.resolved', 'alerts.triggered']);
    const single = await createEndpoint({ event_types: ['alerts.triggered', 'alerts.triggered'] });
    expect(single.event_types).toEqual(['alerts.triggered']);
    const got = await server.request('GET', `/v1/webhook-endpoints/${single.id}`);
    expect(got.body.event_types).toEqual(['alerts.triggered']);

    const patched = await server.request('PATCH', `/v1/webhook-endpoints/${single.id}`, {
      body: { event_types: ['alerts.resolved', 'alerts.resolved'] },
    });
    expect(patched.status).toBe(200);
    expect(patched.body.event_types).toEqual(['alerts.resolved']);
  });

  it('gets an endpoint by id without its secret, and answers 404 for a well-formed id that does not exist', async () => {
    const created = await createEndpoint();
    const got = await server.request('GET', `/v1/webhook-endpoints/${created.id}`);
    expect(got.status).toBe(200);
    expect(got.body).toEqual(withoutSecret(created));
    const missing = await server.request('GET', '/v1/webhook-endpoints/whe_0000000000000000000000');
    expect(missing.status).toBe(404);
    expect(missing.body.message).toContain('whe_0000000000000000000000');
  });

  it('never shows the signing secret again: not in get, list, patch or after a rotation', async () => {
    const created = await createEndpoint();
    const secret = created.signing_secret;
    const responses = [
      await server.request('GET', `/v1/webhook-endpoints/${created.id}`),
      await server.request('GET', '/v1/webhook-endpoints'),
      await server.request('GET', '/v1/webhook-endpoints?enabled=true'),
      await server.request('GET', '/v1/webhook-endpoints?event_type=alerts.triggered'),
      await server.request('PATCH', `/v1/webhook-endpoints/${created.id}`, { body: { name: 'renamed' } }),
      await server.request('PATCH', `/v1/webhook-endpoints/${created.id}`, { body: {} }),
    ];
    const rotated = await server.request('POST', `/v1/webhook-endpoints/${created.id}/rotate-secret`);
    expect(rotated.status).toBe(200);
    responses.push(
      await server.request('GET', `/v1/webhook-endpoints/${created.id}`),
      await server.request('GET', '/v1/webhook-endpoints'),
    );
    for (const res of responses) {
      expect(res.status).toBe(200);
      expect(res.text).not.toContain(secret);
      expect(res.text).not.toContain(rotated.body.signing_secret);
      expect(res.text).not.toContain('signing_secret');
      expect(res.text).not.toContain('whsec_');
    }
  });

  it('lists endpoints oldest first and filters by enabled and event_type', async () => {
    await createEndpoint({ name: 'both' });
    await createEndpoint({ name: 'triggered-off', event_types: ['alerts.triggered'], enabled: false });
    await createEndpoint({ name: 'resolved', event_types: ['alerts.resolved'] });
    const names = async (query: string) => {
      const res = await server.request('GET', `/v1/webhook-endpoints${query}`);
      expect(res.status).toBe(200);
      for (const endpoint of res.body.data) expect(Object.keys(endpoint).sort()).toEqual(ENDPOINT_KEYS);
      return res.body.data.map((e: { name: string }) => e.name);
    };

    expect(await names('')).toEqual(['both', 'triggered-off', 'resolved']);
    expect(await names('?enabled=true')).toEqual(['both', 'resolved']);
    expect(await names('?enabled=false')).toEqual(['triggered-off']);
    expect(await names('?event_type=alerts.triggered')).toEqual(['both', 'triggered-off']);
    expect(await names('?event_type=alerts.resolved')).toEqual(['both', 'resolved']);
    expect(await names('?event_type=alerts.triggered&enabled=true')).toEqual(['both']);
    expect(await names('?event_type=alerts.resolved&enabled=false')).toEqual([]);
  });

  it('lists only the endpoints of the caller account, and another account gets 404 for them', async () => {
    const mine = await createEndpoint({ name: 'mine' });
    const otherKey = await server.newKey('globex');
    await createEndpoint({ name: 'theirs' }, otherKey);
    const list = await server.request('GET', '/v1/webhook-endpoints');
    expect(list.body.data.map((e: { name: string }) => e.name)).toEqual(['mine']);
    const options = { key: otherKey };
    expect((await server.request('GET', `/v1/webhook-endpoints/${mine.id}`, options)).status).toBe(404);
    expect((await server.request('PATCH', `/v1/webhook-endpoints/${mine.id}`, { ...options, body: { name: 'x' } })).status).toBe(404);
    expect((await server.request('POST', `/v1/webhook-endpoints/${mine.id}/rotate-secret`, options)).status).toBe(404);
    expect((await server.request('DELETE', `/v1/webhook-endpoints/${mine.id}`, options)).status).toBe(404);
    expect(await server.service.store.webhookEndpoints.signingSecret(mine.id)).toBe(mine.signing_secret);
    expect((await server.request('GET', `/v1/webhook-endpoints/${mine.id}`)).body.name).toBe('mine');
  });

  it('patches only the given fields and moves updated_at', async () => {
    const created = await createEndpoint({ headers: { 'X-One': '1', 'X-Two': '2' } });
    clock.advance(90_000);
    const res = await server.request('PATCH', `/v1/webhook-endpoints/${created.id}`, {
      body: { url: 'https://hooks.example.com/polyai-v2', enabled: false },
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      ...withoutSecret(created),
      url: 'https://hooks.example.com/polyai-v2',
      enabled: false,
      updated_at: '2026-03-15T10:31:30.000Z',
    });
    expect(res.body.created_at).toBe('2026-03-15T10:30:00.000Z');

    clock.advance(30_000);
    const more = await server.request('PATCH', `/v1/webhook-endpoints/${created.id}`, {
      body: { name: 'Renamed', timeout_ms: 1000, event_types: ['alerts.resolved'] },
    });
    expect(more.body).toEqual({
      ...res.body,
      name: 'Renamed',
      timeout_ms: 1000,
      event_types: ['alerts.resolved'],
      updated_at: '2026-03-15T10:32:00.000Z',
    });
    expect(await server.request('GET', `/v1/webhook-endpoints/${created.id}`).then((r) => r.body)).toEqual(more.body);
  });

  it('replaces the whole headers map when headers are patched, and keeps it when they are not', async () => {
    const created = await createEndpoint({ headers: { 'X-One': '1', 'X-Two': '2' } });
    const replaced = await server.request('PATCH', `/v1/webhook-endpoints/${created.id}`, { body: { headers: { 'X-Three': '3' } } });
    expect(replaced.status).toBe(200);
    expect(replaced.body.headers).toEqual({ 'X-Three': '3' });
    const untouched = await server.request('PATCH', `/v1/webhook-endpoints/${created.id}`, { body: { name: 'other' } });
    expect(untouched.body.headers).toEqual({ 'X-Three': '3' });
    const cleared = await server.request('PATCH', `/v1/webhook-endpoints/${created.id}`, { body: { headers: {} } });
    expect(cleared.body.headers).toEqual({});
    expect((await server.request('GET', `/v1/webhook-endpoints/${created.id}`)).body.headers).toEqual({});
  });

  it('does not change the signing secret when an endpoint is patched', async () => {
    const created = await createEndpoint();
    await server.request('PATCH', `/v1/webhook-endpoints/${created.id}`, { body: { url: 'https://other.example.com/hook' } });
    expect(await server.service.store.webhookEndpoints.signingSecret(created.id)).toBe(created.signing_secret);
  });

  it('answers 404 when patching a well-formed id that does not exist', async () => {
    const res = await server.request('PATCH', '/v1/webhook-endpoints/whe_0000000000000000000000', { body: { name: 'x' } });
    expect(res.status).toBe(404);
  });

  it('deletes an endpoint with 204, after which it is 404 everywhere and gone from the list', async () => {
    const created = await createEndpoint();
    const kept = await createEndpoint({ name: 'kept' });
    const res = await server.request('DELETE', `/v1/webhook-endpoints/${created.id}`);
    expect(res.status).toBe(204);
    expect(res.text).toBe('');
    const path = `/v1/webhook-endpoints/${created.id}`;
    expect((await server.request('GET', path)).status).toBe(404);
    expect((await server.request('DELETE', path)).status).toBe(404);
    expect((await server.request('PATCH', path, { body: { name: 'x' } })).status).toBe(404);
    expect((await server.request('POST', `${path}/rotate-secret`)).status).toBe(404);
    expect(await server.service.store.webhookEndpoints.signingSecret(created.id)).toBeUndefined();
    const list = await server.request('GET', '/v1/webhook-endpoints');
    expect(list.body.data.map((e: { id: string }) => e.id)).toEqual([kept.id]);
  });

  it('rotates the signing secret: 200 with a new, different secret that is now the one used for signing', async () => {
    const created = await createEndpoint();
    clock.advance(60_000);
    const res = await server.request('POST', `/v1/webhook-endpoints/${created.id}/rotate-secret`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ signing_secret: res.body.signing_secret, previous_secret_expires_at: null });
    expectStrongSecret(res.body.signing_secret);
    expect(res.body.signing_secret).not.toBe(created.signing_secret);
    expect(await server.service.store.webhookEndpoints.signingSecret(created.id)).toBe(res.body.signing_secret);

    const again = await server.request('POST', `/v1/webhook-endpoints/${created.id}/rotate-secret`);
    expect(again.body.signing_secret).not.toBe(res.body.signing_secret);
    expect(again.body.signing_secret).not.toBe(created.signing_secret);
    expect(await server.service.store.webhookEndpoints.signingSecret(created.id)).toBe(again.body.signing_secret);

    // The endpoint itself is otherwise unchanged.
    const got = await server.request('GET', `/v1/webhook-endpoints/${created.id}`);
    const { updated_at: _updated, ...rest } = withoutSecret(created);
    expect(got.body).toMatchObject(rest);
  });

  it('rotates the secret when the request carries a JSON content type and an empty body', async () => {
    const created = await createEndpoint();
    const res = await server.request('POST', `/v1/webhook-endpoints/${created.id}/rotate-secret`, { rawBody: '' });
    expect(res.status).toBe(200);
    expectStrongSecret(res.body.signing_secret);
    expect(await server.service.store.webhookEndpoints.signingSecret(created.id)).toBe(res.body.signing_secret);
  });

  it('answers 404 when rotating the secret of a well-formed id that does not exist, and 422 for a malformed one', async () => {
    const missing = await server.request('POST', '/v1/webhook-endpoints/whe_0000000000000000000000/rotate-secret');
    expect(missing.status).toBe(404);
    expect(missing.body.message).toContain('whe_0000000000000000000000');
    const malformed = await server.request('POST', '/v1/webhook-endpoints/ar_0000000000000000000000/rotate-secret');
    expect(malformed.status).toBe(422);
  });
});
