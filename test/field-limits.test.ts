import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  endpointBody,
  ruleBody,
  snapshotDatabase,
  startSeededServer,
  testClock,
  type ApiResponse,
  type RequestOptions,
  type TestServer,
} from './helpers/server.js';

/**
 * Every stored text has a documented length limit (README, "Deviations from the published
 * contract"): rule name and project_id 255 characters, endpoint name 255, URL 2048, at most
 * 20 custom headers with names of 128 and values of 1024 characters. Past a limit: 400
 * naming the field, and nothing changes. At the limit: accepted.
 */

let server: TestServer;
let ruleId: string;
let endpointId: string;

beforeAll(async () => {
  ({ server, ruleId, endpointId } = await startSeededServer(testClock()));
});
afterAll(async () => {
  await server.close();
});

async function expectRejected(method: string, path: string, options: RequestOptions, mentions: RegExp): Promise<ApiResponse> {
  const before = await snapshotDatabase(server.service);
  const res = await server.request(method, path, options);
  expect(res.status, res.text.slice(0, 500)).toBe(400);
  expect(res.body.message, res.text.slice(0, 500)).toMatch(mentions);
  // The answer stays small whatever was sent.
  expect(res.text.length).toBeLessThan(4096);
  expect(await snapshotDatabase(server.service)).toEqual(before);
  return res;
}

const headers = (count: number) => Object.fromEntries(Array.from({ length: count }, (_, i) => [`X-H${i}`, 'v']));
const httpsUrl = (length: number) => {
  const base = 'https://hooks.example.com/';
  return base + 'p'.repeat(length - base.length);
};

describe('alert rule limits', () => {
  const tooLong: [string, Record<string, unknown>, RegExp][] = [
    ['a name of 256 characters', { name: 'n'.repeat(256) }, /name/],
    ['a name of 1,000,000 characters', { name: 'n'.repeat(1_000_000) }, /name/],
    ['a project_id of 256 characters', { project_id: 'p'.repeat(256) }, /project_id/],
  ];

  it.each(tooLong)('answers 400 on create for %s', async (_what, overrides, mentions) => {
    await expectRejected('POST', '/v1/alert-rules', { body: ruleBody(overrides) }, mentions);
  });

  it.each(tooLong)('answers 400 on PATCH for %s', async (_what, overrides, mentions) => {
    await expectRejected('PATCH', `/v1/alert-rules/${ruleId}`, { body: overrides }, mentions);
  });

  it('accepts a name and a project_id of exactly 255 characters', async () => {
    const body = ruleBody({ name: 'n'.repeat(255), project_id: 'p'.repeat(255) });
    const created = await server.request('POST', '/v1/alert-rules', { body });
    expect(created.status, created.text).toBe(201);
    expect(created.body).toMatchObject({ name: body.name, project_id: body.project_id });
    const patched = await server.request('PATCH', `/v1/alert-rules/${created.body.id}`, { body: { name: 'm'.repeat(255) } });
    expect(patched.status).toBe(200);
    expect(patched.body.name).toHaveLength(255);
    expect((await server.request('DELETE', `/v1/alert-rules/${created.body.id}`)).status).toBe(204);
  });

  it('takes telemetry project_ids of up to the same 255 characters, so every rule project can be fed', async () => {
    const ok = await server.request('POST', '/v1/telemetry/events', { body: { events: [{ type: 'call', project_id: 'p'.repeat(255) }] } });
    expect(ok.status, ok.text).toBe(202);
    const tooLongId = await server.request('POST', '/v1/telemetry/events', { body: { events: [{ type: 'call', project_id: 'p'.repeat(256) }] } });
    expect(tooLongId.status).toBe(400);
    expect(tooLongId.body.message).toMatch(/project_id/);
  });
});

describe('webhook endpoint limits', () => {
  const tooLong: [string, Record<string, unknown>, RegExp][] = [
    ['a name of 1,000,000 characters', { name: 'n'.repeat(1_000_000) }, /name/],
    ['a url of 2049 characters', { url: httpsUrl(2049) }, /url/],
    ['21 custom headers', { headers: headers(21) }, /headers/],
    ['a header name of 129 characters', { headers: { ['X-' + 'n'.repeat(127)]: 'v' } }, /headers\.X-n+…? name is longer than 128/],
    ['a header name of 100,000 characters', { headers: { ['X-' + 'n'.repeat(100_000)]: 'v' } }, /headers\.X-n+… name is longer than 128/],
    ['a header value of 1025 characters', { headers: { 'X-Token': 'v'.repeat(1025) } }, /headers\.X-Token/],
  ];

  it.each(tooLong)('answers 400 on create for %s', async (_what, overrides, mentions) => {
    await expectRejected('POST', '/v1/webhook-endpoints', { body: endpointBody(overrides) }, mentions);
  });

  it.each(tooLong)('answers 400 on PATCH for %s', async (_what, overrides, mentions) => {
    await expectRejected('PATCH', `/v1/webhook-endpoints/${endpointId}`, { body: overrides }, mentions);
  });

  it('accepts a 2048-character URL and 20 headers with a 128-character name and a 1024-character value', async () => {
    const edge = { ...headers(19), ['X-' + 'n'.repeat(126)]: 'v'.repeat(1024) };
    const created = await server.request('POST', '/v1/webhook-endpoints', { body: endpointBody({ url: httpsUrl(2048), headers: edge }) });
    expect(created.status, created.text.slice(0, 500)).toBe(201);
    expect(created.body.url).toHaveLength(2048);
    expect(created.body.headers).toEqual(edge);
    const patched = await server.request('PATCH', `/v1/webhook-endpoints/${created.body.id}`, { body: { headers: headers(20) } });
    expect(patched.status).toBe(200);
    expect(Object.keys(patched.body.headers)).toHaveLength(20);
    expect((await server.request('DELETE', `/v1/webhook-endpoints/${created.body.id}`)).status).toBe(204);
  });
});

describe('the OpenAPI document', () => {
  it('states every limit on the request bodies it validates', async () => {
    const doc = (await server.request('GET', '/openapi.json', { key: null })).body;
    const bodySchema = (path: string, method: string) => {
      const schema = doc.paths[path][method].requestBody.content['application/json'].schema;
      return schema.$ref ? doc.components.schemas[schema.$ref.split('/').pop()] : schema;
    };
    for (const [path, method] of [
      ['/v1/alert-rules', 'post'],
      ['/v1/alert-rules/{rule_id}', 'patch'],
    ] as const) {
      const { properties } = bodySchema(path, method);
      expect(properties.name.maxLength, `${method} ${path} name`).toBe(255);
      expect(properties.project_id.maxLength, `${method} ${path} project_id`).toBe(255);
    }
    for (const [path, method] of [
      ['/v1/webhook-endpoints', 'post'],
      ['/v1/webhook-endpoints/{endpoint_id}', 'patch'],
    ] as const) {
      const { properties } = bodySchema(path, method);
      expect(properties.name.maxLength).toBe(255);
      expect(properties.url.maxLength).toBe(2048);
      expect(properties.headers.maxProperties).toBe(20);
      expect(properties.headers.additionalProperties).toEqual({ type: 'string', maxLength: 1024 });
      expect(properties.headers.description).toMatch(/128 characters/);
    }
  });
});
