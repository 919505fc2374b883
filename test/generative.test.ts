import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  endpointBody,
  ruleBody,
  snapshotDatabase,
  startTestServer,
  testClock,
  type RequestOptions,
  type TestServer,
} from './helpers/server.js';

/**
 * Random requests, each invalid by construction (at least one violation is always put in),
 * against one server holding data of two accounts. Whatever the mix, the service answers a
 * 4xx with a JSON `{"message"}` (never a 5xx; the harness also checks every response against
 * the published document) and the database stays exactly as it was.
 */

// The contract's enums, written out here so that a drift in src/ is caught.
const METRICS = ['turn_latency_p50', 'turn_latency_p95', 'api_errors', 'function_errors', 'call_crashes', 'call_volume'];
const OPERATORS = ['>', '<', '>=', '<='];
const WINDOWS = ['5m', '10m', '60m'];
const STATES = ['ok', 'alert', 'no_data', 'unknown'];
const EVENT_TYPES = ['alerts.triggered', 'alerts.resolved'];
const RULE_FIELDS = ['name', 'project_id', 'metric', 'operator', 'threshold_value', 'window_duration', 'enabled'];
const ENDPOINT_FIELDS = ['name', 'url', 'event_types', 'headers', 'timeout_ms', 'enabled'];
const RULE_REQUIRED = ['name', 'metric', 'operator', 'threshold_value', 'window_duration'];
const ENDPOINT_REQUIRED = ['name', 'url', 'event_types'];
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const RULE_ID = /^ar_[A-Za-z0-9]+$/;
const ENDPOINT_ID = /^whe_[A-Za-z0-9]+$/;

interface BadRequest {
  why: string;
  method: string;
  path: string;
  options: RequestOptions;
  /** The statuses the contract allows for this request. */
  expected: readonly number[];
}

let server: TestServer;
let initial: Record<string, unknown[]>;
let acme: { rules: string[]; endpoints: string[] };
let globex: { rules: string[]; endpoints: string[] };
let revokedKey: string;

beforeAll(async () => {
  server = await startTestServer({ clock: testClock() });
  const otherKey = await server.newKey('globex');
  const create = async (key: string, path: string, body: Record<string, unknown>) => {
    const res = await server.request('POST', path, { key, body });
    expect(res.status).toBe(201);
    return res.body.id as string;
  };
  acme = {
    rules: [
      await create(server.key, '/v1/alert-rules', ruleBody()),
      await create(server.key, '/v1/alert-rules', ruleBody({ name: 'volume', metric: 'call_volume', operator: '<', enabled: false })),
    ],
    endpoints: [
      await create(server.key, '/v1/webhook-endpoints', endpointBody({ url: 'https://127.0.0.1:9/a' })),
      await create(
        server.key,
        '/v1/webhook-endpoints',
        endpointBody({ url: 'https://127.0.0.1:9/b', headers: { 'X-Team': 'ops' }, event_types: ['alerts.resolved'], timeout_ms: 2000 }),
      ),
    ],
  };
  globex = {
    rules: [await create(otherKey, '/v1/alert-rules', ruleBody({ name: 'globex rule' }))],
    endpoints: [await create(otherKey, '/v1/webhook-endpoints', endpointBody({ url: 'https://127.0.0.1:9/g' }))],
  };
  const revoked = await server.service.apiKeys.create('acme');
  await server.service.apiKeys.revoke(revoked.record.id);
  revokedKey = revoked.key;
  initial = await snapshotDatabase(server.service);
});
afterAll(async () => {
  await server.close();
});

/** An object without a prototype, so that keys such as "__proto__" are plain own keys. */
function bare(entries: [string, unknown][]): Record<string, unknown> {
  const object = Object.create(null) as Record<string, unknown>;
  for (const [key, value] of entries) object[key] = value;
  return object;
}

// ---- values -------------------------------------------------------------------------

const text = (max = 30) => fc.oneof(fc.string({ maxLength: max }), fc.string({ maxLength: max, unit: 'grapheme' }));
const anyJson = fc.jsonValue({ maxDepth: 2 });
const notString = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.integer(), { maxLength: 2 }),
  fc.constant({}),
);
const notBoolean = fc.oneof(
  fc.constantFrom('true', 'false', 0, 1, null, 'yes'),
  fc.integer(),
  text(),
  fc.array(fc.boolean(), { maxLength: 2 }),
);
const notIn = (allowed: string[]) => fc.oneof(text().filter((s) => !allowed.includes(s)), notString);
const nonInteger = fc.integer({ min: -1_000_000, max: 1_000_000 }).map((n) => n + 0.5);
const INT32_MAX = 2 ** 31 - 1;
const notRange = (min: number, max: number) => {
  const inRange = fc.integer({ min, max: Math.min(max, INT32_MAX) });
  return fc.oneof(
    fc.integer({ max: min - 1 }),
    max < INT32_MAX ? fc.integer({ min: max + 1 }) : fc.constantFrom(max + 1, 2 ** 60, 1e300),
    nonInteger,
    inRange.map(String),
    fc.constant(null),
    fc.boolean(),
    fc.array(inRange, { minLength: 1, maxLength: 2 }),
  );
};

const validRule = {
  name: text(),
  project_id: fc.option(text(20), { nil: null }),
  metric: fc.constantFrom(...METRICS),
  operator: fc.constantFrom(...OPERATORS),
  threshold_value: fc.integer({ min: 0, max: 1_000_000_000 }),
  window_duration: fc.constantFrom(...WINDOWS),
  enabled: fc.boolean(),
};
const badRule: Record<string, fc.Arbitrary<unknown>> = {
  name: notString,
  project_id: fc.oneof(fc.integer(), fc.boolean(), fc.array(text(5), { maxLength: 2 }), fc.constant({ id: 'p' })),
  metric: notIn(METRICS),
  operator: notIn(OPERATORS),
  threshold_value: notRange(0, Number.MAX_SAFE_INTEGER),
  window_duration: notIn(WINDOWS),
  enabled: notBoolean,
};

// Connection-level names are refused even when well-formed (README, deviations).
const CONNECTION_HEADERS = ['connection', 'content-length', 'expect', 'host', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade'];
const headerName = fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,15}$/).filter((name) => !CONNECTION_HEADERS.includes(name.toLowerCase()));
const headerValue = fc.stringMatching(/^[\x20-\x7e]{0,30}$/);
const validEndpoint = {
  name: text(50).filter((s) => s.length >= 1 && s.length <= 255),
  url: fc.constantFrom('https://127.0.0.1:9/hook', 'https://localhost:9/x?y=1'),
  event_types: fc.subarray(EVENT_TYPES, { minLength: 1 }),
  // Names differing only in case are refused as a repeat.
  headers: fc.uniqueArray(fc.tuple(headerName, headerValue), { maxLength: 3, selector: ([name]) => name.toLowerCase() }).map(bare),
  timeout_ms: fc.integer({ min: 1000, max: 30000 }),
  enabled: fc.boolean(),
};
const badHeaders = fc.oneof(
  fc.oneof(
    text(),
    fc.integer(),
    fc.constant(null),
    fc.boolean(),
    fc.array(fc.tuple(headerName, headerValue), { minLength: 1, maxLength: 2 }),
  ),
  // One bad entry among good ones: a non-string value, a bad name, or a value with CR, LF, NUL or non-ASCII.
  fc
    .tuple(
      fc.array(fc.tuple(headerName, headerValue), { maxLength: 2 }),
      fc.oneof(
        fc.tuple(headerName, notString),
        fc.tuple(
          text(12).filter((s) => !HEADER_NAME.test(s)),
          headerValue,
        ),
        fc.tuple(
          headerName,
          fc
            .tuple(headerValue, fc.constantFrom('\r', '\n', '\r\n', '\u0000', '\u007f', 'é', '\u2028'), headerValue)
            .map((parts) => parts.join('')),
        ),
      ),
    )
    .map(([good, bad]) => bare([...good.filter(([name]) => name !== bad[0]), bad])),
);
const badEndpoint: Record<string, fc.Arbitrary<unknown>> = {
  name: fc.oneof(notString, fc.constant(''), fc.integer({ min: 256, max: 2000 }).map((n) => 'n'.repeat(n))),
  url: fc.oneof(
    notString,
    fc.constantFrom('http://127.0.0.1/hook', 'ftp://127.0.0.1/x', 'javascript:alert(1)', 'https://exa mple.com/', '//127.0.0.1/x', 'HTTPS'),
    text(40).filter((s) => !s.startsWith('https://')),
  ),
  event_types: fc.oneof(
    fc.constant([]),
    fc.constantFrom(...EVENT_TYPES),
    notString.filter((v) => !Array.isArray(v)),
    fc.tuple(fc.subarray(EVENT_TYPES), notIn(EVENT_TYPES)).map(([good, bad]) => [...good, bad]),
  ),
  headers: badHeaders,
  timeout_ms: notRange(1000, 30000),
  enabled: notBoolean,
};

type Violation =
  | { kind: 'set'; field: string; value: unknown }
  | { kind: 'unknown'; field: string; value: unknown }
  | { kind: 'delete'; field: string };

function violations(fields: string[], bad: Record<string, fc.Arbitrary<unknown>>, required: string[]): fc.Arbitrary<Violation[]> {
  const options: fc.Arbitrary<Violation>[] = [
    fc.constantFrom(...fields).chain((field) => bad[field]!.map((value): Violation => ({ kind: 'set', field, value }))),
    fc
      .oneof(
        text(20).filter((s) => !fields.includes(s)),
        fc.constantFrom('id', 'account_id', 'current_state', 'created_at', 'signing_secret', '__proto__', 'constructor', ''),
      )
      .chain((field) => anyJson.map((value): Violation => ({ kind: 'unknown', field, value }))),
  ];
  if (required.length > 0) options.push(fc.constantFrom(...required).map((field): Violation => ({ kind: 'delete', field })));
  return fc.array(fc.oneof(...options), { minLength: 1, maxLength: 3 });
}

function withViolations(base: Record<string, unknown>, list: Violation[]): Record<string, unknown> {
  const body = bare(Object.entries(base));
  for (const v of list) {
    if (v.kind === 'delete') delete body[v.field];
    else body[v.field] = v.value;
  }
  return body;
}

// ---- requests -----------------------------------------------------------------------

const jsonContentType = fc.constantFrom('application/json', 'application/json; charset=utf-8');
const junkQuery = fc.option(
  fc.array(fc.tuple(fc.stringMatching(/^x_[a-z0-9]{1,8}$/), text(10)), { minLength: 1, maxLength: 2 }).map(
    (pairs) => '?' + pairs.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&'),
  ),
  { nil: '' },
);

const ruleTarget = () =>
  fc.oneof(
    fc.record({ method: fc.constant('POST'), path: fc.constant('/v1/alert-rules'), create: fc.constant(true) }),
    fc.record({
      method: fc.constant('PATCH'),
      path: fc.constantFrom(...acme.rules).map((id) => `/v1/alert-rules/${id}`),
      create: fc.constant(false),
    }),
  );
const endpointTarget = () =>
  fc.oneof(
    fc.record({ method: fc.constant('POST'), path: fc.constant('/v1/webhook-endpoints'), create: fc.constant(true) }),
    fc.record({
      method: fc.constant('PATCH'),
      path: fc.constantFrom(...acme.endpoints).map((id) => `/v1/webhook-endpoints/${id}`),
      create: fc.constant(false),
    }),
  );

/** A body that would be accepted at that target (a full one to create, a partial one to patch). */
const validBodyFor = (create: boolean, resource: 'rule' | 'endpoint') => {
  const valid: Record<string, fc.Arbitrary<unknown>> = resource === 'rule' ? validRule : validEndpoint;
  const required = resource === 'rule' ? RULE_REQUIRED : ENDPOINT_REQUIRED;
  return fc.record(valid, { requiredKeys: create ? required : [] });
};

/** A JSON object body with one to three schema violations. */
const schemaViolation = (): fc.Arbitrary<BadRequest> =>
  fc.oneof(
    fc.tuple(ruleTarget(), fc.constant('rule' as const)),
    fc.tuple(endpointTarget(), fc.constant('endpoint' as const)),
  ).chain(([target, resource]) => {
    const fields = resource === 'rule' ? RULE_FIELDS : ENDPOINT_FIELDS;
    const bad = resource === 'rule' ? badRule : badEndpoint;
    const required = target.create ? (resource === 'rule' ? RULE_REQUIRED : ENDPOINT_REQUIRED) : [];
    return fc
      .record({
        base: validBodyFor(target.create, resource),
        list: violations(fields, bad, required),
        contentType: jsonContentType,
        query: junkQuery,
      })
      .map(({ base, list, contentType, query }) => ({
        why: `schema violation on ${resource}: ${JSON.stringify(list)}`,
        method: target.method,
        path: target.path + query,
        options: { rawBody: JSON.stringify(withViolations(base, list)), contentType },
        expected: [400],
      }));
  });

/** Text that is not one JSON value: a valid body cut short, or with junk around it. */
const malformedJson = (): fc.Arbitrary<BadRequest> =>
  fc.oneof(fc.tuple(ruleTarget(), fc.constant('rule' as const)), fc.tuple(endpointTarget(), fc.constant('endpoint' as const))).chain(
    ([target, resource]) =>
      fc
        .record({
          json: validBodyFor(target.create, resource).map((b) => JSON.stringify(b)),
          cut: fc.nat(),
          junk: fc.constantFrom('}', ',', 'x', ']', '{', '"', '\u0000', ' true', '//'),
          how: fc.constantFrom('truncate', 'append', 'prepend', 'single-quotes'),
          contentType: jsonContentType,
        })
        .map(({ json, cut, junk, how, contentType }) => {
          let raw: string;
          if (how === 'truncate') raw = json.slice(0, 1 + (cut % (json.length - 1)));
          else if (how === 'append') raw = json + junk;
          else if (how === 'prepend') raw = (junk.trim() === '' ? 'x' : junk) + json;
          else raw = json.length > 2 ? json.replace(/"/g, "'") : "{'a': 1}";
          return {
            why: `malformed JSON (${how})`,
            method: target.method,
            path: target.path,
            options: { rawBody: raw, contentType },
            expected: [400],
          };
        }),
  );

/** JSON that parses, but to something other than an object. */
const nonObjectJson = (): fc.Arbitrary<BadRequest> =>
  fc
    .record({
      target: fc.oneof(ruleTarget(), endpointTarget()),
      value: fc.oneof(fc.array(anyJson, { maxLength: 3 }), fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null)),
      contentType: jsonContentType,
    })
    .map(({ target, value, contentType }) => ({
      why: 'JSON body that is not an object',
      method: target.method,
      path: target.path,
      options: { rawBody: JSON.stringify(value), contentType },
      expected: [400],
    }));

/** A body (even a valid one) under a media type other than JSON. */
const notJsonContentType = (): fc.Arbitrary<BadRequest> =>
  fc
    .record({
      target: fc.oneof(
        ruleTarget().map((t) => ({ ...t, resource: 'rule' as const })),
        endpointTarget().map((t) => ({ ...t, resource: 'endpoint' as const })),
      ),
      contentType: fc.oneof(
        fc.constantFrom(
          'text/plain',
          'text/plain; charset=utf-8',
          'application/x-www-form-urlencoded',
          'multipart/form-data; boundary=xyz',
          'application/xml',
          'text/json',
          'application/jsonp',
          'application/json-patch+json',
          'application/octet-stream',
          'json',
          '*/*',
          'garbage',
        ),
        fc.stringMatching(/^[a-z][a-z0-9.+-]{0,12}\/[a-z0-9.+-]{1,12}$/),
      ),
      useValid: fc.boolean(),
      junk: fc.string({ minLength: 1, maxLength: 40 }),
    })
    .filter(({ contentType }) => contentType.split(';')[0]!.trim().toLowerCase() !== 'application/json')
    .chain(({ target, contentType, useValid, junk }) =>
      (useValid ? validBodyFor(target.create, target.resource).map((b) => JSON.stringify(b) || '{}') : fc.constant(junk)).map(
        (rawBody): BadRequest => ({
          why: `content type ${contentType}`,
          method: target.method,
          path: target.path,
          options: { rawBody: rawBody === '' ? 'x' : rawBody, contentType },
          expected: [415],
        }),
      ),
    );

const itemRoutes = [
  { method: 'GET', template: '/v1/alert-rules/{id}', pattern: RULE_ID, body: false },
  { method: 'PATCH', template: '/v1/alert-rules/{id}', pattern: RULE_ID, body: true },
  { method: 'DELETE', template: '/v1/alert-rules/{id}', pattern: RULE_ID, body: false },
  { method: 'GET', template: '/v1/webhook-endpoints/{id}', pattern: ENDPOINT_ID, body: false },
  { method: 'PATCH', template: '/v1/webhook-endpoints/{id}', pattern: ENDPOINT_ID, body: true },
  { method: 'DELETE', template: '/v1/webhook-endpoints/{id}', pattern: ENDPOINT_ID, body: false },
  { method: 'POST', template: '/v1/webhook-endpoints/{id}/rotate-secret', pattern: ENDPOINT_ID, body: false },
];
const validPatch = (route: (typeof itemRoutes)[number]) =>
  route.body
    ? validBodyFor(false, route.pattern === RULE_ID ? 'rule' : 'endpoint').map((b): RequestOptions => ({ body: b }))
    : fc.constant<RequestOptions>({});

/** A path ID that does not match the route's ID pattern (422), with an otherwise valid request. */
const malformedId = (): fc.Arbitrary<BadRequest> =>
  fc.constantFrom(...itemRoutes).chain((route) =>
    fc
      .tuple(
        fc.oneof(
          text(30),
          fc.tuple(fc.constantFrom('ar_', 'whe_', 'AR_', 'ar', 'whe', 'ar__', 'whe_-'), text(20)).map(([p, s]) => p + s),
          fc.constantFrom('bad', 'ar_', 'whe_', 'ar_abc-def', 'whe_a.b', 'ar_x y', 'ar_é', '0', 'null', 'undefined', 'ar_%00'),
        ),
        validPatch(route),
      )
      .filter(([id]) => id !== '' && id !== '.' && id !== '..' && !route.pattern.test(id) && encodeURIComponent(id).length <= 90)
      .map(([id, options]) => ({
        why: `malformed id ${JSON.stringify(id)}`,
        method: route.method,
        path: route.template.replace('{id}', encodeURIComponent(id)),
        options,
        expected: [422],
      })),
  );

/** A well-formed ID that does not exist, or belongs to the other account (404). */
const foreignOrMissingId = (): fc.Arbitrary<BadRequest> =>
  fc.constantFrom(...itemRoutes).chain((route) => {
    const prefix = route.pattern === RULE_ID ? 'ar_' : 'whe_';
    const foreign = route.pattern === RULE_ID ? globex.rules : globex.endpoints;
    return fc
      .tuple(fc.oneof(fc.constantFrom(...foreign), fc.stringMatching(/^[A-Za-z0-9]{1,40}$/).map((s) => prefix + s)), validPatch(route))
      .filter(([id]) => ![...acme.rules, ...acme.endpoints].includes(id))
      .map(([id, options]) => ({
        why: `not this account's id ${id}`,
        method: route.method,
        path: route.template.replace('{id}', id),
        options,
        expected: [404],
      }));
  });

const listQueries = [
  { path: '/v1/alert-rules', params: { enabled: ['true', 'false'], metric: METRICS, state: STATES } },
  { path: '/v1/alerts', params: { metric: METRICS } },
  { path: '/v1/webhook-endpoints', params: { enabled: ['true', 'false'], event_type: EVENT_TYPES } },
];

/** A list with a filter value outside its enum (or given twice), plus harmless extras. */
const badQuery = (): fc.Arbitrary<BadRequest> =>
  fc.constantFrom(...listQueries).chain((list) =>
    fc.constantFrom(...Object.entries(list.params)).chain(([param, allowed]) =>
      fc
        .record({
          bad: fc.oneof(
            text(20)
              .filter((v) => !allowed.includes(v))
              .map((v) => `${param}=${encodeURIComponent(v)}`),
            fc.tuple(fc.constantFrom(...allowed), fc.constantFrom(...allowed)).map(([a, b]) => `${param}=${a}&${param}=${b}`),
          ),
          extra: fc.array(
            fc.tuple(fc.stringMatching(/^x_[a-z]{1,6}$/), text(8)).map(([k, v]) => `${k}=${encodeURIComponent(v)}`),
            { maxLength: 2 },
          ),
          order: fc.boolean(),
        })
        .map(({ bad, extra, order }) => ({
          why: `bad ${param} filter`,
          method: 'GET',
          path: `${list.path}?${(order ? [bad, ...extra] : [...extra, bad]).join('&')}`,
          options: {},
          expected: [400],
        })),
    ),
  );

/** A request that would succeed, sent without a live key (401). */
const badKey = (): fc.Arbitrary<BadRequest> =>
  fc
    .record({
      key: fc.oneof(
        fc.constant(null),
        fc.constant(''),
        fc.constant(revokedKey),
        fc.stringMatching(/^[\x21-\x7e]{1,80}$/),
        fc.stringMatching(/^[A-Za-z0-9]{43}$/).map((s) => 'alk_' + s),
      ),
      request: fc.oneof(
        fc.constantFrom(
          { method: 'GET', path: '/v1/alert-rules' },
          { method: 'GET', path: '/v1/alerts' },
          { method: 'GET', path: '/v1/webhook-endpoints' },
          { method: 'DELETE', path: `/v1/alert-rules/{rule}` },
          { method: 'DELETE', path: `/v1/webhook-endpoints/{endpoint}` },
          { method: 'POST', path: `/v1/webhook-endpoints/{endpoint}/rotate-secret` },
        ),
        validBodyFor(true, 'rule').map((body) => ({ method: 'POST', path: '/v1/alert-rules', body })),
        validBodyFor(true, 'endpoint').map((body) => ({ method: 'POST', path: '/v1/webhook-endpoints', body })),
        validBodyFor(false, 'rule').map((body) => ({ method: 'PATCH', path: '/v1/alert-rules/{rule}', body })),
        fc.constant({ method: 'POST', path: '/v1/telemetry/events', body: { events: [{ type: 'call' }] } }),
      ),
    })
    .map(({ key, request }) => ({
      why: `key ${JSON.stringify(key)}`,
      method: request.method,
      path: request.path.replace('{rule}', acme.rules[0]!).replace('{endpoint}', acme.endpoints[0]!),
      options: { key, ...('body' in request ? { body: request.body } : {}) },
      expected: [401],
    }));

/** A method or path the API does not have. */
const unknownRoute = (): fc.Arbitrary<BadRequest> =>
  fc
    .record({
      method: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'),
      path: fc.oneof(
        fc.constantFrom(
          '/v1/alert-rules',
          '/v1/alert-rules/{rule}',
          '/v1/alert-rules/{rule}/rotate-secret',
          '/v1/alerts',
          '/v1/alerts/{rule}',
          '/v1/webhook-endpoints',
          '/v1/webhook-endpoints/{endpoint}',
          '/v1/webhook-endpoints/{endpoint}/rotate-secret',
          '/v1/webhook-endpoints/{endpoint}/deliveries/x',
          '/v1',
          '/v2/alert-rules',
          '/alert-rules',
        ),
        fc.stringMatching(/^\/v1\/[a-z-]{1,12}(\/[a-z0-9_]{1,8})?$/),
      ),
      body: fc.option(validBodyFor(true, 'rule'), { nil: undefined }),
    })
    .map(({ method, path, body }) => ({
      method,
      path: path.replace('{rule}', acme.rules[0]!).replace('{endpoint}', acme.endpoints[0]!),
      body: method === 'GET' ? undefined : body,
    }))
    .filter(({ method, path }) => !isRealOperation(method, path))
    .map(({ method, path, body }) => ({
      why: 'no such route',
      method,
      path,
      options: body === undefined ? {} : { body },
      expected: [404, 405],
    }));

function isRealOperation(method: string, path: string): boolean {
  const real: [string, RegExp][] = [
    ['GET', /^\/v1\/alert-rules$/],
    ['POST', /^\/v1\/alert-rules$/],
    ['GET', /^\/v1\/alert-rules\/[^/]+$/],
    ['PATCH', /^\/v1\/alert-rules\/[^/]+$/],
    ['DELETE', /^\/v1\/alert-rules\/[^/]+$/],
    ['GET', /^\/v1\/alerts$/],
    ['GET', /^\/v1\/webhook-endpoints$/],
    ['POST', /^\/v1\/webhook-endpoints$/],
    ['GET', /^\/v1\/webhook-endpoints\/[^/]+$/],
    ['PATCH', /^\/v1\/webhook-endpoints\/[^/]+$/],
    ['DELETE', /^\/v1\/webhook-endpoints\/[^/]+$/],
    ['POST', /^\/v1\/webhook-endpoints\/[^/]+\/rotate-secret$/],
  ];
  // Routes beyond the published contract (telemetry ingestion) are left out of this category.
  return path.startsWith('/v1/telemetry') || real.some(([m, p]) => m === method && p.test(path));
}

async function sendAndCheck(req: BadRequest): Promise<void> {
  const res = await server.request(req.method, req.path, req.options);
  const context = `${req.why}: ${req.method} ${req.path} -> ${res.status} ${res.text.slice(0, 300)}`;
  expect(res.status, context).toBeGreaterThanOrEqual(400);
  expect(res.status, context).toBeLessThan(500);
  expect(req.expected, context).toContain(res.status);
  expect(res.headers.get('content-type') ?? '', context).toMatch(/^application\/json/);
  expect(typeof res.body?.message, context).toBe('string');
  expect(res.body.message.length, context).toBeGreaterThan(0);
  expect(await snapshotDatabase(server.service), context).toEqual(initial);
}

const property = (arbitrary: () => fc.Arbitrary<BadRequest>, numRuns: number) =>
  fc.assert(fc.asyncProperty(arbitrary(), sendAndCheck), { numRuns });

describe('random invalid requests', () => {
  it('answer 400 for JSON objects that break the body schema, changing nothing', async () => {
    await property(schemaViolation, 400);
  });

  it('answer 400 for malformed JSON and for JSON that is not an object', async () => {
    await property(() => fc.oneof(malformedJson(), nonObjectJson()), 120);
  });

  it('answer 415 for any body type other than JSON', async () => {
    await property(notJsonContentType, 80);
  });

  it('answer 422 for malformed path IDs and 404 for IDs of nothing in this account', async () => {
    await property(() => fc.oneof(malformedId(), foreignOrMissingId()), 200);
  });

  it('answer 400 for list filters outside their enums', async () => {
    await property(badQuery, 100);
  });

  it('answer 401 without a live key and 404 for routes that do not exist', async () => {
    await property(() => fc.oneof(badKey(), unknownRoute()), 120);
  });

  it('answer a 4xx with a message to a random mix of all of the above', async () => {
    await property(
      () =>
        fc.oneof(
          { arbitrary: schemaViolation(), weight: 4 },
          malformedJson(),
          nonObjectJson(),
          notJsonContentType(),
          malformedId(),
          foreignOrMissingId(),
          badQuery(),
          badKey(),
          unknownRoute(),
        ),
      300,
    );
  });

  it('left every table exactly as it was, and the data still reads back through the API', async () => {
    expect(await snapshotDatabase(server.service)).toEqual(initial);
    const rules = (await server.request('GET', '/v1/alert-rules')).body.data.map((r: { id: string }) => r.id);
    expect(rules).toEqual(acme.rules);
    const endpoints = (await server.request('GET', '/v1/webhook-endpoints')).body.data.map((e: { id: string }) => e.id);
    expect(endpoints).toEqual(acme.endpoints);
  });
});
