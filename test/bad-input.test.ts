import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  endpointBody,
  ruleBody,
  snapshotDatabase,
  startSeededServer,
  startTestServer,
  testClock,
  type ApiResponse,
  type RequestOptions,
  type TestServer,
} from './helpers/server.js';

/**
 * Every bad input gets its documented status and a `{"message"}` that names the problem,
 * and leaves the database exactly as it was. (The harness already fails any 5xx and any
 * response that does not match the published document.)
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

/** Sends the request and checks status, message and that nothing was written. */
async function expectRejected(
  method: string,
  path: string,
  options: RequestOptions,
  status: number | number[],
  mentions: RegExp,
): Promise<ApiResponse> {
  const before = await snapshotDatabase(server.service);
  const res = await server.request(method, path, options);
  if (typeof status === 'number') expect(res.status, res.text).toBe(status);
  else expect(status, res.text).toContain(res.status);
  expect(typeof res.body?.message, res.text).toBe('string');
  expect(res.body.message, res.text).toMatch(mentions);
  expect(await snapshotDatabase(server.service)).toEqual(before);
  return res;
}

type Target = { label: string; method: string; path: () => string; valid: () => Record<string, unknown> };

const ruleCreate: Target = { label: 'create alert rule', method: 'POST', path: () => '/v1/alert-rules', valid: () => ruleBody() };
const rulePatch: Target = {
  label: 'patch alert rule',
  method: 'PATCH',
  path: () => `/v1/alert-rules/${ruleId}`,
  valid: () => ({ name: 'renamed' }),
};
const endpointCreate: Target = {
  label: 'create webhook endpoint',
  method: 'POST',
  path: () => '/v1/webhook-endpoints',
  valid: () => endpointBody(),
};
const endpointPatch: Target = {
  label: 'patch webhook endpoint',
  method: 'PATCH',
  path: () => `/v1/webhook-endpoints/${endpointId}`,
  valid: () => ({ name: 'renamed' }),
};
// Ours (test/silences.test.ts): the same body handling as the published operations.
const silenceCreate: Target = {
  label: 'create silence',
  method: 'POST',
  path: () => '/v1/silences',
  valid: () => ({ project_id: 'proj_abc123', ends_at: '2026-04-01T00:00:00.000Z', comment: 'maintenance' }),
};
const writeTargets = [ruleCreate, rulePatch, endpointCreate, endpointPatch, silenceCreate];

describe('bodies that are not a JSON object', () => {
  describe.each(writeTargets)('$label', (target) => {
    it('answers 400 naming malformed JSON', async () => {
      await expectRejected(target.method, target.path(), { rawBody: '{"name": "x",', contentType: 'application/json' }, 400, /JSON/);
    });

    it('answers 400 for JSON with a trailing comma or single quotes', async () => {
      await expectRejected(target.method, target.path(), { rawBody: '{"name": "x",}', contentType: 'application/json' }, 400, /JSON/);
      await expectRejected(target.method, target.path(), { rawBody: "{'name': 'x'}", contentType: 'application/json' }, 400, /JSON/);
    });

    it('answers 400 for bytes that are not UTF-8 JSON', async () => {
      await expectRejected(
        target.method,
        target.path(),
        { rawBody: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), contentType: 'application/json' },
        400,
        /JSON/,
      );
    });

    it.each([
      ['an array', '[]'],
      ['an array holding a valid body', null],
      ['a string', '"name"'],
      ['a number', '42'],
      ['a boolean', 'true'],
      ['null', 'null'],
    ])('answers 400 for a body that is %s', async (_what, raw) => {
      const rawBody = raw ?? JSON.stringify([target.valid()]);
      await expectRejected(target.method, target.path(), { rawBody, contentType: 'application/json' }, 400, /object/);
    });

    it('answers 400 for a prototype-poisoning __proto__ key', async () => {
      const rawBody = JSON.stringify(target.valid()).replace(/^\{/, '{"__proto__": {"enabled": false, "isAdmin": true}, ');
      await expectRejected(target.method, target.path(), { rawBody, contentType: 'application/json' }, 400, /proto/);
      expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
    });

    it('answers 400 for a constructor.prototype poisoning key', async () => {
      const rawBody = JSON.stringify(target.valid()).replace(/^\{/, '{"constructor": {"prototype": {"isAdmin": true}}, ');
      await expectRejected(target.method, target.path(), { rawBody, contentType: 'application/json' }, 400, /constructor|prototype/);
      expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
    });

    it.each(['text/plain', 'application/x-www-form-urlencoded', 'application/xml', 'multipart/form-data; boundary=x'])(
      'answers 415 for Content-Type %s',
      async (contentType) => {
        const rawBody = contentType.startsWith('application/x-www') ? 'name=x&threshold_value=5' : JSON.stringify(target.valid());
        await expectRejected(target.method, target.path(), { rawBody, contentType }, 415, /JSON/);
      },
    );

    it('answers 415 for a body sent without any Content-Type', async () => {
      await expectRejected(target.method, target.path(), { rawBody: JSON.stringify(target.valid()), contentType: null }, 415, /JSON/);
    });

    it('answers 413 for a JSON body larger than 1 MiB', async () => {
      const body = { ...target.valid(), name: 'x'.repeat(1024 * 1024 + 16) };
      await expectRejected(target.method, target.path(), { body }, 413, /large|limit|size/i);
    });

    it('answers 413 or 415 with a message for an oversized body that is not JSON', async () => {
      await expectRejected(
        target.method,
        target.path(),
        { rawBody: 'x'.repeat(1024 * 1024 + 1), contentType: 'text/plain' },
        // The contract does not say which check comes first for a big body that is not JSON.
        [413, 415],
        /JSON|large|limit/,
      );
    });
  });

  it.each([
    ['a non-JSON upload (415)', '/v1/alert-rules', 'text/plain', undefined],
    ['an upload to an unknown route (404)', '/v1/no-such-route', 'text/plain', undefined],
    ['an upload without a valid key (401)', '/v1/alert-rules', 'application/json', 'alk_not-a-real-key-0000000000'],
  ])('does not let %s that was answered unread hold up a graceful shutdown', async (_what, path, contentType, key) => {
    // Whether the upload is still going when the answer is sent depends on its size; a
    // connection left half-read used to keep close() waiting for the 72 s keep-alive timeout.
    for (const size of [1024 * 1024, 2 * 1024 * 1024, 3 * 1024 * 1024]) {
      const own = await startTestServer();
      const res = await fetch(own.baseUrl + path, {
        method: 'POST',
        body: '{"name": "' + 'x'.repeat(size) + '"}',
        headers: { 'content-type': contentType, 'x-api-key': key ?? own.key },
      });
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expect(typeof ((await res.json()) as { message?: unknown }).message).toBe('string');
      const closing = own.close();
      const closedInTime = await Promise.race([
        closing.then(() => true),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 3000)),
      ]);
      if (!closedInTime) {
        own.service.app.server.closeAllConnections();
        await closing;
      }
      expect(closedInTime, `the server took more than 3 s to close after a rejected ${size}-byte upload`).toBe(true);
    }
  });

  it('accepts a body of just under 1 MiB (the limit is not lower than documented)', async () => {
    // Every field has a length limit far below 1 MiB: whitespace makes a valid body that big.
    const rawBody = `{"name": "renamed"${' '.repeat(1024 * 1024 - 100)}}`;
    expect(rawBody.length).toBeGreaterThan(1024 * 1024 - 100);
    const res = await server.request('PATCH', `/v1/alert-rules/${ruleId}`, { rawBody });
    expect(res.status, res.text).toBe(200);
    expect(res.body.name).toBe('renamed');
  });

  it('treats an empty JSON body on create as a missing object (400)', async () => {
    await expectRejected('POST', '/v1/alert-rules', { rawBody: '', contentType: 'application/json' }, 400, /object/);
    await expectRejected('POST', '/v1/webhook-endpoints', { rawBody: '', contentType: 'application/json' }, 400, /object/);
  });

  it('accepts application/json with a charset parameter', async () => {
    const res = await server.request('PATCH', `/v1/alert-rules/${ruleId}`, {
      rawBody: JSON.stringify({ name: 'charset' }),
      contentType: 'application/json; charset=utf-8',
    });
    expect(res.status).toBe(200);
  });
});

describe('alert rule bodies that fail the schema', () => {
  const wrongFields: [string, Record<string, unknown>, RegExp][] = [
    ['threshold_value as a numeric string (no coercion)', { threshold_value: '5' }, /threshold_value/],
    ['threshold_value -1', { threshold_value: -1 }, /threshold_value/],
    ['threshold_value 1.5', { threshold_value: 1.5 }, /threshold_value/],
    ['threshold_value null', { threshold_value: null }, /threshold_value/],
    ['threshold_value true', { threshold_value: true }, /threshold_value/],
    ['threshold_value beyond 2^53', { threshold_value: 2 ** 53 }, /threshold_value/],
    ['name as a number', { name: 123 }, /name/],
    ['name null', { name: null }, /name/],
    ['project_id as a number', { project_id: 42 }, /project_id/],
    ['project_id as an object', { project_id: { id: 'p' } }, /project_id/],
    ['enabled as the string "true"', { enabled: 'true' }, /enabled/],
    ['enabled as 1', { enabled: 1 }, /enabled/],
    ['an unknown metric', { metric: 'cpu_usage' }, /metric/],
    ['a metric in another case', { metric: 'API_ERRORS' }, /metric/],
    ['an unknown operator', { operator: '==' }, /operator/],
    ['an unknown window_duration', { window_duration: '15m' }, /window_duration/],
    ['a window_duration as a number', { window_duration: 5 }, /window_duration/],
    ['an unknown field', { severity: 'high' }, /severity/],
    ['a read-only field (id)', { id: 'ar_0Kx4mNpQ8rWvYb2dFgHjLs' }, /\bid\b/],
    ['a read-only field (current_state)', { current_state: 'alert' }, /current_state/],
    ['a read-only field (created_at)', { created_at: '2020-01-01T00:00:00.000Z' }, /created_at/],
  ];

  it.each(wrongFields)('answers 400 on create for %s', async (_what, overrides, mentions) => {
    await expectRejected('POST', '/v1/alert-rules', { body: ruleBody(overrides) }, 400, mentions);
  });

  it.each(wrongFields)('answers 400 on PATCH for %s', async (_what, overrides, mentions) => {
    await expectRejected('PATCH', `/v1/alert-rules/${ruleId}`, { body: { name: 'renamed', ...overrides } }, 400, mentions);
  });

  it.each(['name', 'metric', 'operator', 'threshold_value', 'window_duration'])(
    'answers 400 on create when %s is missing',
    async (field) => {
      const body = ruleBody();
      delete body[field];
      const res = await expectRejected('POST', '/v1/alert-rules', { body }, 400, new RegExp(field));
      expect(res.body.errors).toContainEqual({ field, message: expect.stringMatching(/required/) });
    },
  );

  it('names every bad field when several are wrong at once', async () => {
    const res = await expectRejected(
      'POST',
      '/v1/alert-rules',
      { body: ruleBody({ threshold_value: -1, metric: 'nope', extra: 1 }) },
      400,
      /threshold_value/,
    );
    expect(res.body.message).toMatch(/metric/);
    expect(res.body.message).toMatch(/extra/);
    const fields = (res.body.errors as { field: string }[]).map((e) => e.field);
    expect(fields).toEqual(expect.arrayContaining(['threshold_value', 'metric', 'extra']));
  });

  it('rejects a PATCH whose one bad field sits beside good ones, changing none of them', async () => {
    await expectRejected(
      'PATCH',
      `/v1/alert-rules/${ruleId}`,
      { body: { name: 'changed', enabled: false, threshold_value: 1.5 } },
      400,
      /threshold_value/,
    );
    const rule = (await server.request('GET', `/v1/alert-rules/${ruleId}`)).body;
    expect(rule).toMatchObject({ name: 'High turn latency (p95)', enabled: true, threshold_value: 1500 });
  });

  it('accepts threshold_value 0 and 2^53 - 1 (the edges of the range)', async () => {
    expect((await server.request('PATCH', `/v1/alert-rules/${ruleId}`, { body: { threshold_value: 0 } })).status).toBe(200);
    const max = await server.request('PATCH', `/v1/alert-rules/${ruleId}`, { body: { threshold_value: Number.MAX_SAFE_INTEGER } });
    expect(max.status).toBe(200);
    expect(max.body.threshold_value).toBe(Number.MAX_SAFE_INTEGER);
  });
});

describe('webhook endpoint bodies that fail the schema', () => {
  const wrongFields: [string, Record<string, unknown>, RegExp][] = [
    ['timeout_ms 999', { timeout_ms: 999 }, /timeout_ms/],
    ['timeout_ms 30001', { timeout_ms: 30001 }, /timeout_ms/],
    ['timeout_ms 1500.5', { timeout_ms: 1500.5 }, /timeout_ms/],
    ['timeout_ms as a string', { timeout_ms: '5000' }, /timeout_ms/],
    ['timeout_ms null', { timeout_ms: null }, /timeout_ms/],
    ['empty event_types', { event_types: [] }, /event_types/],
    ['an unknown event type', { event_types: ['alerts.triggered', 'alerts.acknowledged'] }, /event_types/],
    ['event_types as a bare string', { event_types: 'alerts.triggered' }, /event_types/],
    ['event_types holding a number', { event_types: [1] }, /event_types/],
    ['an http:// URL', { url: 'http://hooks.example.com/polyai' }, /url/],
    ['a string that is not a URL', { url: 'not a url' }, /url/],
    ['an https URL with a space in the host', { url: 'https://hooks example.com/x' }, /url/],
    ['a javascript: URL', { url: 'javascript:alert(1)' }, /url/],
    ['url as a number', { url: 443 }, /url/],
    ['url null', { url: null }, /url/],
    ['a name of 256 characters', { name: 'n'.repeat(256) }, /name/],
    ['an empty name', { name: '' }, /name/],
    ['name as a number', { name: 7 }, /name/],
    ['headers as an array', { headers: [['X-A', 'b']] }, /headers/],
    ['headers as a string', { headers: 'X-A: b' }, /headers/],
    ['headers null', { headers: null }, /headers/],
    ['a header value that is a number', { headers: { 'X-Count': 5 } }, /headers/],
    ['a header value with CR/LF', { headers: { 'X-A': 'ok\r\nX-Injected: yes' } }, /headers/],
    ['a header value with a bare LF', { headers: { 'X-A': 'ok\nX-Injected: yes' } }, /headers/],
    ['a header value with a NUL', { headers: { 'X-A': 'ok\u0000' } }, /headers/],
    ['a header name with a space', { headers: { 'X Bad': 'v' } }, /headers/],
    ['a header name with a colon', { headers: { 'X-A:': 'v' } }, /headers/],
    ['a header name with CR/LF', { headers: { 'X-A\r\nX-B': 'v' } }, /headers/],
    ['an empty header name', { headers: { '': 'v' } }, /headers/],
    ['a header name that is not ASCII', { headers: { 'X-Ünïcode': 'v' } }, /headers/],
    ['enabled as the string "false"', { enabled: 'false' }, /enabled/],
    ['an unknown field', { retries: 3 }, /retries/],
    ['a signing_secret chosen by the client', { signing_secret: 'whsec_mine' }, /signing_secret/],
    ['a read-only field (id)', { id: 'whe_9ZtRcXw3nByK5pVqMaEfJs' }, /\bid\b/],
  ];

  it.each(wrongFields)('answers 400 on create for %s', async (_what, overrides, mentions) => {
    await expectRejected('POST', '/v1/webhook-endpoints', { body: endpointBody(overrides) }, 400, mentions);
  });

  it.each(wrongFields)('answers 400 on PATCH for %s', async (_what, overrides, mentions) => {
    await expectRejected('PATCH', `/v1/webhook-endpoints/${endpointId}`, { body: { name: 'renamed', ...overrides } }, 400, mentions);
  });

  it.each(['name', 'url', 'event_types'])('answers 400 on create when %s is missing', async (field) => {
    const body = endpointBody();
    delete body[field];
    const res = await expectRejected('POST', '/v1/webhook-endpoints', { body }, 400, new RegExp(field));
    expect(res.body.errors).toContainEqual({ field, message: expect.stringMatching(/required/) });
  });

  it('accepts the edges: a 255-character name, timeout_ms 1000 and 30000', async () => {
    const created = await server.request('POST', '/v1/webhook-endpoints', {
      body: endpointBody({ name: 'n'.repeat(255), timeout_ms: 1000 }),
    });
    expect(created.status).toBe(201);
    expect(created.body.name).toHaveLength(255);
    const patched = await server.request('PATCH', `/v1/webhook-endpoints/${endpointId}`, { body: { timeout_ms: 30000 } });
    expect(patched.status).toBe(200);
    expect(patched.body.timeout_ms).toBe(30000);
  });

  it('rejects a headers map with one bad header among good ones, keeping the old map', async () => {
    await server.request('PATCH', `/v1/webhook-endpoints/${endpointId}`, { body: { headers: { 'X-Old': 'kept' } } });
    await expectRejected(
      'PATCH',
      `/v1/webhook-endpoints/${endpointId}`,
      { body: { headers: { 'X-Good': 'fine', 'X-Bad': 'a\r\nb' } } },
      400,
      /X-Bad/,
    );
    expect((await server.request('GET', `/v1/webhook-endpoints/${endpointId}`)).body.headers).toEqual({ 'X-Old': 'kept' });
  });
});

describe('query strings with unknown values', () => {
  it.each([
    ['/v1/alert-rules?enabled=maybe', /enabled/],
    ['/v1/alert-rules?enabled=1', /enabled/],
    ['/v1/alert-rules?enabled=', /enabled/],
    ['/v1/alert-rules?enabled=true&enabled=false', /enabled/],
    ['/v1/alert-rules?metric=foo', /metric/],
    ['/v1/alert-rules?metric=', /metric/],
    ['/v1/alert-rules?state=bad', /state/],
    ['/v1/alert-rules?state=ALERT', /state/],
    ['/v1/alert-rules?state=ok&metric=nope', /metric/],
    ['/v1/alerts?metric=foo', /metric/],
    ['/v1/webhook-endpoints?enabled=maybe', /enabled/],
    ['/v1/webhook-endpoints?event_type=bad', /event_type/],
    ['/v1/webhook-endpoints?event_type=alerts.triggered&event_type=alerts.resolved', /event_type/],
    ['/v1/webhook-endpoints/{endpoint}/deliveries?status=done', /status/],
    ['/v1/webhook-endpoints/{endpoint}/deliveries?event_type=alerts.fired', /event_type/],
  ])('answers 400 for GET %s', async (path, mentions) => {
    await expectRejected('GET', path.replace('{endpoint}', endpointId), {}, 400, mentions);
  });
});

describe('malformed path IDs', () => {
  const cases: [string, string, RequestOptions][] = [
    ['GET', '/v1/alert-rules/bad', {}],
    ['GET', '/v1/alert-rules/ar_', {}],
    ['GET', '/v1/alert-rules/ar_abc-def', {}],
    ['GET', '/v1/alert-rules/AR_abc', {}],
    ['GET', '/v1/alert-rules/whe_abc', {}],
    ['GET', '/v1/alert-rules/ar_abc%20def', {}],
    ['GET', '/v1/alert-rules/ar_abc%2Fdef', {}],
    ['GET', '/v1/alert-rules/ar_%C3%A9t%C3%A9', {}],
    ['PATCH', '/v1/alert-rules/bad', { body: { name: 'x' } }],
    ['PATCH', '/v1/alert-rules/ar_abc-def', { body: { name: 'x' } }],
    ['DELETE', '/v1/alert-rules/bad', {}],
    ['DELETE', '/v1/alert-rules/ar_', {}],
    ['GET', '/v1/webhook-endpoints/ar_x', {}],
    ['GET', '/v1/webhook-endpoints/whe_', {}],
    ['GET', '/v1/webhook-endpoints/whe_a.b', {}],
    ['PATCH', '/v1/webhook-endpoints/ar_x', { body: { name: 'x' } }],
    ['DELETE', '/v1/webhook-endpoints/ar_x', {}],
    ['POST', '/v1/webhook-endpoints/ar_x/rotate-secret', {}],
    ['POST', '/v1/webhook-endpoints/whe_/rotate-secret', {}],
    ['POST', '/v1/webhook-endpoints/bad/rotate-secret', {}],
    ['GET', '/v1/webhook-endpoints/bad/deliveries', {}],
    ['POST', '/v1/webhook-endpoints/bad/test', {}],
    ['POST', '/v1/webhook-endpoints/whe_0000000000000000000000/deliveries/bad/retry', {}],
    ['GET', '/v1/silences/bad', {}],
    ['DELETE', '/v1/silences/ar_0000000000000000000000', {}],
    ['POST', '/v1/webhook-endpoints/whe_0000000000000000000000/deliveries/evt_0000000000000000000000/retry', {}],
  ];

  it.each(cases)('answers 422 for %s %s', async (method, path, options) => {
    await expectRejected(method, path, options, 422, /_id|ID/);
  });

  it('answers 422 for a malformed ID even when the PATCH body is also bad', async () => {
    await expectRejected('PATCH', '/v1/alert-rules/bad', { body: { threshold_value: -1 } }, 422, /rule_id|ID/);
  });

  it('answers 404, not 422, for a well-formed ID that does not exist', async () => {
    await expectRejected('GET', '/v1/alert-rules/ar_0000000000000000000000', {}, 404, /ar_0000000000000000000000/);
    await expectRejected('POST', '/v1/webhook-endpoints/whe_0000000000000000000000/rotate-secret', {}, 404, /whe_0000000000000000000000/);
    await expectRejected('GET', '/v1/webhook-endpoints/whe_0000000000000000000000/deliveries', {}, 404, /whe_0000000000000000000000/);
    await expectRejected('POST', '/v1/webhook-endpoints/whe_0000000000000000000000/test', {}, 404, /whe_0000000000000000000000/);
    await expectRejected('POST', `/v1/webhook-endpoints/${endpointId}/deliveries/dlv_0000000000000000000000/retry`, {}, 404, /dlv_0000000000000000000000/);
    await expectRejected('DELETE', '/v1/silences/sil_0000000000000000000000', {}, 404, /sil_0000000000000000000000/);
  });

  it('answers 404 (not 414) for a well-formed ID of 500 characters, and 414 beyond the 512-character limit', async () => {
    await expectRejected('GET', `/v1/alert-rules/ar_${'a'.repeat(497)}`, {}, 404, /not found/);
    await expectRejected('GET', `/v1/alert-rules/ar_${'a'.repeat(600)}`, {}, 414, /longer than 512/);
  });

  it('answers 400 with a JSON message and the usual headers for a path that cannot be percent-decoded', async () => {
    const res = await expectRejected('GET', '/v1/alert-rules/%', {}, 400, /percent-encoding/);
    expect(res.headers.get('x-request-id')).toBeTruthy();
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it('answers a 4xx JSON message, never a 5xx, for an ID too long or not decodable', async () => {
    for (const path of [`/v1/alert-rules/ar_${'a'.repeat(500)}`, '/v1/alert-rules/%', '/v1/webhook-endpoints/%E0%A4%A']) {
      const before = await snapshotDatabase(server.service);
      const res = await server.request('GET', path);
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expect(typeof res.body.message).toBe('string');
      expect(await snapshotDatabase(server.service)).toEqual(before);
    }
  });
});
