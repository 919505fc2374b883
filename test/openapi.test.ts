import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FORBIDDEN_HEADER_NAMES } from '../src/domain/webhook-endpoints.js';
import { publishedSpec } from './helpers/published-spec.js';
import { startTestServer, type TestServer } from './helpers/server.js';

type Json = any;

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

let server: TestServer;

beforeEach(async () => {
  server = await startTestServer();
});
afterEach(async () => {
  await server.close();
});

async function ourDocument(): Promise<Json> {
  const res = await server.request('GET', '/openapi.json', { key: null });
  expect(res.status).toBe(200);
  return res.body;
}

// ---------------------------------------------------------------------------------------
// Normalization: $refs resolved, allOf merged, prose and examples dropped, so that two
// documents that describe the same wire format compare equal however they are written.
// ---------------------------------------------------------------------------------------

function resolvePointer(root: Json, ref: string): Json {
  if (!ref.startsWith('#/')) throw new Error(`only local $refs are expected, got ${ref}`);
  return ref
    .slice(2)
    .split('/')
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((node: Json, key) => {
      if (node === null || typeof node !== 'object' || !(key in node)) throw new Error(`unresolvable $ref ${ref}`);
      return node[key];
    }, root);
}

/** Follows $refs of non-schema objects (parameters, responses, request bodies). */
function deref(root: Json, node: Json): Json {
  let current = node;
  for (let hops = 0; current && typeof current === 'object' && typeof current.$ref === 'string'; hops++) {
    if (hops > 20) throw new Error('$ref loop');
    current = resolvePointer(root, current.$ref);
  }
  return current;
}

const DROPPED_KEYWORDS = new Set(['description', 'example', 'examples', 'title', '$comment']);
const SCHEMA_MAP_KEYWORDS = new Set(['properties', 'patternProperties', '$defs']);
const SCHEMA_KEYWORDS = new Set(['items', 'additionalProperties', 'not', 'contains', 'propertyNames', 'if', 'then', 'else']);
const SCHEMA_LIST_KEYWORDS = new Set(['allOf', 'anyOf', 'oneOf', 'prefixItems']);

function mergeInto(target: Record<string, Json>, part: Record<string, Json>, where: string): void {
  for (const [key, value] of Object.entries(part)) {
    if (key === 'properties') {
      const properties = (target.properties ??= {});
      for (const [name, schema] of Object.entries(value as Record<string, Json>)) {
        if (name in properties && !isDeepStrictEqual(properties[name], schema)) {
          throw new Error(`${where}: allOf parts disagree on property ${name}`);
        }
        properties[name] = schema;
      }
    } else if (key === 'required') {
      target.required = [...new Set([...(target.required ?? []), ...(value as string[])])].sort();
    } else if (key in target && !isDeepStrictEqual(target[key], value)) {
      throw new Error(`${where}: allOf parts disagree on ${key}`);
    } else {
      target[key] = value;
    }
  }
}

function normalizeSchema(root: Json, schema: Json, where = '#', seen: readonly string[] = []): Json {
  if (typeof schema === 'boolean') return schema;
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) throw new Error(`${where}: not a schema`);
  if (typeof schema.$ref === 'string') {
    if (seen.includes(schema.$ref)) throw new Error(`${where}: recursive $ref ${schema.$ref}`);
    const { $ref, ...siblings } = schema;
    const target = normalizeSchema(root, resolvePointer(root, $ref), where, [...seen, $ref]);
    const rest = normalizeSchema(root, siblings, where, seen);
    const merged = { ...target };
    mergeInto(merged, rest, where);
    return merged;
  }
  const out: Record<string, Json> = {};
  for (const [key, value] of Object.entries(schema)) {
    if (DROPPED_KEYWORDS.has(key)) continue;
    if (SCHEMA_MAP_KEYWORDS.has(key)) {
      out[key] = Object.fromEntries(
        Object.entries(value as Record<string, Json>).map(([name, sub]) => [name, normalizeSchema(root, sub, `${where}/${key}/${name}`, seen)]),
      );
    } else if (SCHEMA_KEYWORDS.has(key)) {
      out[key] = normalizeSchema(root, value, `${where}/${key}`, seen);
    } else if (SCHEMA_LIST_KEYWORDS.has(key)) {
      out[key] = (value as Json[]).map((sub, i) => normalizeSchema(root, sub, `${where}/${key}/${i}`, seen));
    } else if (key === 'required') {
      out[key] = [...(value as string[])].sort();
    } else if (key === 'type') {
      const types = Array.isArray(value) ? [...value].sort() : [value];
      out[key] = types.length === 1 ? types[0] : types;
    } else {
      out[key] = value;
    }
  }
  if (Array.isArray(out.allOf)) {
    const parts = out.allOf as Record<string, Json>[];
    delete out.allOf;
    for (const part of parts) mergeInto(out, part, where);
  }
  return out;
}

interface Difference {
  /** Where in the schema, e.g. /properties/threshold_value/maximum. */
  path: string;
  ours: Json;
  published: Json;
}

function differences(ours: Json, published: Json, path = ''): Difference[] {
  const isObject = (v: Json) => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (isObject(ours) && isObject(published)) {
    const keys = [...new Set([...Object.keys(ours), ...Object.keys(published)])].sort();
    return keys.flatMap((key) => differences(ours[key], published[key], `${path}/${key}`));
  }
  return isDeepStrictEqual(ours, published) ? [] : [{ path, ours, published }];
}

const show = (d: Difference) => `${d.path}: ours ${JSON.stringify(d.ours)}, published ${JSON.stringify(d.published)}`;

/** The `errors` member our error bodies may carry (alerts-api.md, common rules). */
const FIELD_ERRORS = {
  type: 'array',
  items: { type: 'object', required: ['field', 'message'], properties: { field: { type: 'string' }, message: { type: 'string' } } },
};

/**
 * The only ways our schemas may differ from the published ones. Each is deliberate and
 * documented: `stated` finds the deviation in the list our document's info.description
 * gives (and the README repeats); anything else is a contract mismatch.
 */
const DOCUMENTED_DIFFERENCES: { why: string; stated: RegExp; requestOnly?: true; applies(d: Difference, status: number | undefined): boolean }[] = [
  // Pending and keep-firing periods (ours): optional fields of create and PATCH.
  ...(['pending_duration', 'keep_firing_duration'] as const).map((name) => ({
    why: `rule create and PATCH take ${name}`,
    requestOnly: true as const,
    stated: /^Alert rule create and PATCH also take `pending_duration` and `keep_firing_duration` \(ours, optional/,
    applies: (d: Difference, status: number | undefined) => status === undefined && d.path === `/properties/${name}` && d.published === undefined,
  })),
  {
    // src/http/schemas.ts: above 2^53 - 1 a JSON number no longer round-trips as an exact
    // integer, so we cap threshold_value there; the published document has no maximum.
    why: 'threshold_value has maximum 2^53 - 1',
    stated: /^`threshold_value`: at most 2\^53 − 1 \(9007199254740991\)/,
    applies: (d) => d.path.endsWith('/properties/threshold_value/maximum') && d.ours === Number.MAX_SAFE_INTEGER && d.published === undefined,
  },
  // Length and count limits on stored text (README, "Deviations from the published contract"):
  // the published document sets none, and unbounded fields let one client store megabytes.
  ...(
    [
      [
        'rule name has maxLength 255',
        /^(\/properties\/data\/items)?\/properties\/name\/maxLength$/,
        255,
        /^Alert rule `name` and `project_id`: at most 255 characters/,
      ],
      [
        'rule project_id has maxLength 255',
        /^(\/properties\/data\/items)?\/properties\/project_id\/maxLength$/,
        255,
        /^Alert rule `name` and `project_id`: at most 255 characters/,
      ],
      [
        'endpoint url has maxLength 2048',
        /^(\/properties\/data\/items)?\/properties\/url\/maxLength$/,
        2048,
        /^Webhook endpoint `url`: .*; at most 2,048 characters;/,
      ],
      [
        'endpoint headers have maxProperties 20',
        /^(\/properties\/data\/items)?\/properties\/headers\/maxProperties$/,
        20,
        /^Custom `headers`: at most 20 headers;/,
      ],
      [
        'endpoint header values have maxLength 1024',
        /^(\/properties\/data\/items)?\/properties\/headers\/additionalProperties\/maxLength$/,
        1024,
        /^Custom `headers`: .*values are printable ASCII \(no CR, LF or NUL\) of at most 1,024 characters/,
      ],
    ] as const
  ).map(([why, path, limit, stated]) => ({
    why,
    stated,
    applies: (d: Difference) => path.test(d.path) && d.ours === limit && d.published === undefined,
  })),
  {
    // alerts-api.md, common rules: validation failures may add errors: [{field, message}].
    why: 'error bodies may carry errors[]',
    stated: /^Error bodies .*validation errors add `errors`/,
    applies: (d, status) => status !== undefined && status >= 400 && d.path === '/properties/errors' && d.published === undefined && isDeepStrictEqual(d.ours, FIELD_ERRORS),
  },
  {
    // Every error we send has a message (the harness checks it on every response); saying
    // so is a tightening of the published Error, which leaves it optional.
    why: 'error bodies always have a message',
    stated: /^Error bodies always carry `message`/,
    applies: (d, status) => status !== undefined && status >= 400 && d.path === '/required' && isDeepStrictEqual(d.ours, ['message']) && d.published === undefined,
  },
  {
    // src/http/schemas.ts: a body cannot list a million event types (repeats are still
    // accepted and dropped, so the bound is above the number of types).
    why: 'event_types has maxItems 16',
    stated: /^Webhook endpoint `event_types`: at most 16 entries/,
    applies: (d) => d.path.endsWith('/properties/event_types/maxItems') && d.ours === 16 && d.published === undefined,
  },
];

/**
 * What we add to the published operations, beyond the contract: optional response fields and
 * optional query parameters, which a client written against the published document never
 * needs and never sees break (its schemas allow additional properties). Each is said to be
 * ours in its own description; anything else that the published document lacks is a mismatch.
 */
const DOCUMENTED_EXTENSIONS: { why: string; name: string; applies(d: Difference): boolean }[] = [
  {
    why: 'endpoints and rotations say until when the previous secret signs',
    name: 'previous_secret_expires_at',
    applies: (d) => /^(\/properties\/data\/items)?\/properties\/previous_secret_expires_at$/.test(d.path) && d.published === undefined,
  },
  // Endpoints the service disabled itself (ALERTS_ENDPOINT_DISABLE_AFTER): why, and when.
  ...(['disabled_reason', 'disabled_at'] as const).map((name) => ({
    why: `endpoints say whether the service disabled them (${name})`,
    name,
    applies: (d: Difference) => new RegExp(`^(/properties/data/items)?/properties/${name}$`).test(d.path) && d.published === undefined,
  })),
  // Pending and keep-firing periods: the rule's, and where it is in them.
  ...(['pending_duration', 'keep_firing_duration', 'pending_since', 'keep_firing_since'] as const).map((name) => ({
    why: `alert rules answer their pending and keep-firing periods (${name})`,
    name,
    applies: (d: Difference) => new RegExp(`^(/properties/data/items)?/properties/${name}$`).test(d.path) && d.published === undefined,
  })),
  // Silences (/v1/silences): whether one matches the rule now, and until when.
  ...(['silenced', 'silenced_until'] as const).map((name) => ({
    why: `alert rules say whether a silence matches them now (${name})`,
    name,
    applies: (d: Difference) => new RegExp(`^(/properties/data/items)?/properties/${name}$`).test(d.path) && d.published === undefined,
  })),
];
/** Optional query parameters of ours on published operations, by operationId. */
const EXTENSION_PARAMETERS: Record<string, string[]> = { rotateWebhookSigningSecret: ['overlap'] };

/**
 * Deviations that our code checks rather than a schema keyword (the published schemas and
 * ours agree there): they must be stated all the same.
 */
const STATED_CHECKS: { why: string; stated: RegExp }[] = [
  { why: 'endpoint url must name a host', stated: /^Webhook endpoint `url`: must name a host \(`https:\/\/`, `https:\/\/\/path` and `https:\/\/:443\/` are refused\)/ },
  { why: 'endpoint url port from 1 to 65535', stated: /^Webhook endpoint `url`: .*; a port, if given, from 1 to 65535/ },
  { why: 'endpoint url without user information', stated: /^Webhook endpoint `url`: .*; no user information/ },
  { why: 'header names are HTTP tokens', stated: /^Custom `headers`: .*; names are HTTP tokens \(RFC 9110\) of at most 128 characters, unique ignoring case;/ },
  ...FORBIDDEN_HEADER_NAMES.map((name) => ({
    why: `header ${name} is refused`,
    stated: new RegExp(`^Custom \`headers\`: .*Connection-level headers are refused: .*\`${name}\``, 'i'),
  })),
];

/**
 * The bullets of the list that follows `heading` in a Markdown text (continuation lines
 * indented), each on one line with its whitespace collapsed.
 */
function bulletsAfter(markdown: string, heading: string): string[] {
  const start = markdown.indexOf(heading);
  expect(start, `no "${heading}"`).toBeGreaterThanOrEqual(0);
  const bullets: string[] = [];
  for (const line of markdown.slice(start + heading.length).split('\n').slice(1)) {
    if (line.startsWith('- ')) bullets.push(line.slice(2));
    else if (bullets.length > 0 && line.startsWith('  ')) bullets[bullets.length - 1] += ` ${line}`;
    else if (bullets.length > 0) break;
  }
  return bullets.map((bullet) => bullet.replace(/\s+/g, ' ').trim());
}

/** Extra statuses we may document for an operation, beyond the published ones. */
function documentedExtraStatuses(published: Json, operationId: string): string[] {
  const extra: string[] = [];
  // alerts-api.md: 413 for a body over the size limit, 415 for a body that is not JSON.
  if (published.requestBody) extra.push('413', '415');
  // alerts-api.md: 400 for a query that fails its schema. The published list-active-alerts
  // operation has filters with an enum but lists no 400.
  if (operationId === 'listActiveAlerts') extra.push('400');
  // Ours: a query parameter of ours that fails its check.
  if (EXTENSION_PARAMETERS[operationId] !== undefined) extra.push('400');
  return extra;
}

interface OperationPair {
  label: string;
  path: string;
  method: string;
  ours: Json;
  published: Json;
}

function publishedOperations(): { path: string; method: string; operation: Json }[] {
  return Object.entries(publishedSpec.paths).flatMap(([path, item]) =>
    METHODS.filter((m) => (item as Json)[m]).map((method) => ({ path, method, operation: (item as Json)[method] })),
  );
}

function pairOperations(ours: Json): OperationPair[] {
  return publishedOperations().map(({ path, method, operation }) => ({
    label: `${method.toUpperCase()} ${path}`,
    path,
    method,
    ours: ours.paths?.[path]?.[method],
    published: operation,
  }));
}

function parametersOf(doc: Json, path: string, method: string): Map<string, Json> {
  const item = doc.paths[path];
  const all = [...(item.parameters ?? []), ...(item[method].parameters ?? [])].map((p: Json) => deref(doc, p));
  const byKey = new Map<string, Json>();
  for (const p of all) byKey.set(`${p.in}:${p.name}`, p); // operation-level ones override path-level ones
  return byKey;
}

function jsonSchemaOf(doc: Json, holder: Json, where: string): Json {
  const content = deref(doc, holder)?.content;
  if (content === undefined) return undefined;
  expect(Object.keys(content), `${where}: media types`).toEqual(['application/json']);
  return normalizeSchema(doc, content['application/json'].schema, where);
}

describe('the OpenAPI document', () => {
  it('is served at /openapi.json without an API key and is a valid OpenAPI 3.1 document', async () => {
    const res = await server.request('GET', '/openapi.json', { key: null });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const validator = new Validator();
    const result = await validator.validate(structuredClone(res.body));
    expect(result.errors ?? [], JSON.stringify(result.errors, null, 2)).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
    expect(res.body.openapi).toMatch(/^3\.1\.\d+$/);
  });

  it('contains every published path', async () => {
    const ours = await ourDocument();
    const missing = Object.keys(publishedSpec.paths).filter((path) => !(path in ours.paths));
    expect(missing).toEqual([]);
  });

  it('has every published operation of every published path, with the same method and operationId', async () => {
    const ours = await ourDocument();
    const pairs = pairOperations(ours);
    expect(pairs.length).toBe(12);
    for (const pair of pairs) {
      expect(pair.ours, `${pair.label} is missing`).toBeDefined();
      expect(pair.ours.operationId, pair.label).toBe(pair.published.operationId);
    }
    const ourIds = Object.values(ours.paths as Record<string, Json>).flatMap((item) =>
      METHODS.filter((m) => item[m]).map((m) => item[m].operationId as string),
    );
    expect(new Set(ourIds).size, 'operationIds are unique').toBe(ourIds.length);
  });

  it('declares the same parameters (name, in, required, schema) as the published operations', async () => {
    const ours = await ourDocument();
    for (const pair of pairOperations(ours)) {
      const mine = parametersOf(ours, pair.path, pair.method);
      const theirs = parametersOf(publishedSpec, pair.path, pair.method);
      for (const name of EXTENSION_PARAMETERS[pair.published.operationId] ?? []) {
        const extension = mine.get(`query:${name}`);
        expect(extension, `${pair.label}: extension parameter ${name}`).toBeDefined();
        expect(extension.required ?? false, `${pair.label}: extension parameter ${name} is optional`).toBe(false);
        expect(extension.description ?? extension.schema?.description, `${pair.label}: ${name} says it is ours`).toMatch(/^Ours: /);
        mine.delete(`query:${name}`);
      }
      expect([...mine.keys()].sort(), `${pair.label} parameters`).toEqual([...theirs.keys()].sort());
      for (const [key, published] of theirs) {
        const our = mine.get(key);
        const where = `${pair.label} parameter ${key}`;
        expect(our.required ?? false, `${where}: required`).toBe(published.required ?? false);
        const ourSchema = normalizeSchema(ours, our.schema, where);
        const publishedSchema = normalizeSchema(publishedSpec, published.schema, where);
        for (const keyword of ['type', 'enum', 'pattern', 'format']) {
          expect(ourSchema[keyword], `${where}: ${keyword}`).toEqual(publishedSchema[keyword]);
        }
        expect(differences(ourSchema, publishedSchema).map(show), where).toEqual([]);
      }
    }
  });

  it('documents every published status code per operation, adding only 413/415 for bodies and 400 for a bad query', async () => {
    const ours = await ourDocument();
    for (const pair of pairOperations(ours)) {
      const mine = Object.keys(pair.ours.responses).sort();
      const theirs = Object.keys(pair.published.responses).sort();
      const missing = theirs.filter((status) => !mine.includes(status));
      expect(missing, `${pair.label} lacks published statuses`).toEqual([]);
      const allowed = documentedExtraStatuses(pair.published, pair.published.operationId);
      const extra = mine.filter((status) => !theirs.includes(status) && !allowed.includes(status));
      expect(extra, `${pair.label} documents statuses the published document does not`).toEqual([]);
    }
  });

  it('describes the same request bodies as the published operations', async () => {
    const ours = await ourDocument();
    let compared = 0;
    for (const pair of pairOperations(ours)) {
      const published = deref(publishedSpec, pair.published.requestBody);
      const mine = deref(ours, pair.ours.requestBody);
      expect(mine === undefined, `${pair.label}: has a request body`).toBe(published === undefined);
      if (published === undefined) continue;
      expect(mine.required ?? false, `${pair.label}: request body required`).toBe(published.required ?? false);
      const where = `${pair.label} request body`;
      const diffs = differences(jsonSchemaOf(ours, mine, where), jsonSchemaOf(publishedSpec, published, where));
      const unexplained = diffs.filter((d) => !DOCUMENTED_DIFFERENCES.some((allowed) => allowed.applies(d, undefined)));
      expect(unexplained.map(show), where).toEqual([]);
      compared += 1;
    }
    expect(compared).toBe(4);
  });

  it('describes the same response bodies as the published operations, apart from the documented differences', async () => {
    const ours = await ourDocument();
    const used = new Set<string>();
    const extended = new Set<string>();
    let compared = 0;
    for (const pair of pairOperations(ours)) {
      for (const [status, publishedResponse] of Object.entries(pair.published.responses as Record<string, Json>)) {
        const where = `${pair.label} -> ${status}`;
        const mine = pair.ours.responses[status];
        if (mine === undefined) continue; // reported by the status-code test
        const publishedSchema = jsonSchemaOf(publishedSpec, publishedResponse, where);
        const ourSchema = jsonSchemaOf(ours, mine, where);
        expect(ourSchema === undefined, `${where}: has a body`).toBe(publishedSchema === undefined);
        if (publishedSchema === undefined) continue;
        const unexplained: Difference[] = [];
        for (const d of differences(ourSchema, publishedSchema)) {
          const allowance = DOCUMENTED_DIFFERENCES.find((allowed) => allowed.applies(d, Number(status)));
          const extension = Number(status) < 400 ? DOCUMENTED_EXTENSIONS.find((allowed) => allowed.applies(d)) : undefined;
          if (allowance) used.add(allowance.why);
          else if (extension) extended.add(extension.why);
          else unexplained.push(d);
        }
        expect(unexplained.map(show), where).toEqual([]);
        compared += 1;
      }
    }
    expect(compared).toBeGreaterThan(40);
    // An allowance nobody needs any more should be removed, not linger.
    expect([...used].sort()).toEqual(DOCUMENTED_DIFFERENCES.filter((d) => !d.requestOnly).map((d) => d.why).sort());
    expect([...extended].sort()).toEqual(DOCUMENTED_EXTENSIONS.map((d) => d.why).sort());
  });

  it('marks each field of ours in a published response as ours, optional, in its description', async () => {
    const ours = await ourDocument();
    let seen = 0;
    const visit = (node: Json): void => {
      if (Array.isArray(node)) return node.forEach(visit);
      if (node === null || typeof node !== 'object') return;
      for (const { name } of DOCUMENTED_EXTENSIONS) {
        const property = node.properties?.[name];
        if (property === undefined) continue;
        seen += 1;
        expect(deref(ours, property).description, name).toMatch(/^Ours: /);
        expect(node.required ?? [], `${name} is optional`).not.toContain(name);
      }
      Object.values(node).forEach(visit);
    };
    visit(ours);
    expect(seen).toBeGreaterThanOrEqual(DOCUMENTED_EXTENSIONS.length);
  });

  it('describes the extra error statuses (413, 415, 400) with the same error shape as the published errors', async () => {
    const ours = await ourDocument();
    const publishedError = normalizeSchema(publishedSpec, publishedSpec.components.schemas.Error);
    for (const pair of pairOperations(ours)) {
      for (const status of documentedExtraStatuses(pair.published, pair.published.operationId)) {
        const where = `${pair.label} -> ${status}`;
        expect(pair.ours.responses[status], where).toBeDefined();
        const diffs = differences(jsonSchemaOf(ours, pair.ours.responses[status], where), publishedError);
        const unexplained = diffs.filter((d) => !DOCUMENTED_DIFFERENCES.some((allowed) => allowed.applies(d, Number(status))));
        expect(unexplained.map(show), where).toEqual([]);
      }
    }
  });

  it('uses the published API key scheme (x-api-key header) for every operation', async () => {
    const ours = await ourDocument();
    expect(ours.components.securitySchemes).toEqual((publishedSpec as Json).components.securitySchemes);
    expect(ours.security).toEqual((publishedSpec as Json).security);
    for (const pair of pairOperations(ours)) {
      // No operation opts out of the document-wide requirement.
      expect(pair.ours.security, pair.label).toBeUndefined();
    }
  });

  it('names one server: this service, relative to where the document is served', async () => {
    const ours = await ourDocument();
    expect(ours.servers).toEqual([{ url: '/', description: expect.any(String) }]);
  });

  it('lists every deliberate deviation from the published contract in info.description, and nothing else', async () => {
    const ours = await ourDocument();
    const bullets = bulletsAfter(ours.info.description, '**Deviations from the published contract**');
    const statements = [...DOCUMENTED_DIFFERENCES, ...STATED_CHECKS];
    for (const { why, stated } of statements) {
      expect(bullets.filter((bullet) => stated.test(bullet)), `${why} is stated once`).toHaveLength(1);
    }
    for (const bullet of bullets) {
      expect(statements.some(({ stated }) => stated.test(bullet)), `${bullet} is a deviation the tests know of`).toBe(true);
    }
  });

  it('lists the same deviations as the README, word for word', async () => {
    const ours = await ourDocument();
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    expect(bulletsAfter(readme, '## Deviations from the published contract')).toEqual(
      bulletsAfter(ours.info.description, '**Deviations from the published contract**'),
    );
  });

  it('states each field deviation in the description of the field', async () => {
    const ours = await ourDocument();
    const seen = { threshold_value: 0, headers: 0, url: 0 };
    const visit = (node: Json): void => {
      if (Array.isArray(node)) return node.forEach(visit);
      if (node === null || typeof node !== 'object') return;
      const properties = node.properties ?? {};
      const { threshold_value: threshold, headers, url } = properties;
      if (threshold?.maximum !== undefined) {
        seen.threshold_value += 1;
        expect(threshold.maximum).toBe(Number.MAX_SAFE_INTEGER);
        expect(threshold.description).toContain('at most 2^53 − 1 (9007199254740991)');
      }
      if (headers?.maxProperties !== undefined) {
        seen.headers += 1;
        expect(headers.description).toMatch(/at most 20 headers; names are HTTP tokens \(RFC 9110\) of at most 128 characters/);
        expect(headers.description).toMatch(/printable ASCII \(no CR, LF or NUL\) of at most 1,024 characters/);
        expect(headers.description).toMatch(/Content-Type and the X-PolyAI-\* headers are reserved, and so are the Standard Webhooks webhook-id, webhook-timestamp and webhook-signature/);
        for (const name of FORBIDDEN_HEADER_NAMES) expect(headers.description).toMatch(new RegExp(`\`${name}\``, 'i'));
      }
      if (url?.pattern !== undefined) {
        seen.url += 1;
        expect(url.description).toMatch(/must name a host.*at most 2,048 characters.*from 1 to 65535.*no user information/);
      }
      Object.values(node).forEach(visit);
    };
    visit(ours);
    // Rules (create, update, the rule itself) and endpoints (create, update, the endpoint itself).
    expect(seen.threshold_value).toBeGreaterThanOrEqual(3);
    expect(seen.headers).toBeGreaterThanOrEqual(3);
    expect(seen.url).toBeGreaterThanOrEqual(2);
  });

  it('does not list itself, the docs or the health check as API operations', async () => {
    const ours = await ourDocument();
    const paths = Object.keys(ours.paths);
    expect(paths.filter((p) => !p.startsWith('/v1/'))).toEqual([]);
  });
});

describe('the API documentation UI', () => {
  /** Script and stylesheet URLs of an HTML page, resolved against the page's own URL. */
  function assetUrls(html: string, pageUrl: string): URL[] {
    const urls: URL[] = [];
    for (const match of html.matchAll(/<script\b[^>]*\bsrc="([^"]+)"/gi)) urls.push(new URL(match[1]!, pageUrl));
    for (const match of html.matchAll(/<link\b[^>]*>/gi)) {
      const tag = match[0];
      const href = /\bhref="([^"]+)"/i.exec(tag)?.[1];
      if (href !== undefined && /\brel="[^"]*stylesheet[^"]*"/i.test(tag)) urls.push(new URL(href, pageUrl));
    }
    return urls;
  }

  for (const docsPath of ['/docs', '/docs/']) {
    it(`answers ${docsPath} with an HTML page whose scripts and stylesheets are all served by this server`, async () => {
      const origin = new URL(server.baseUrl).origin;
      const page = await fetch(server.baseUrl + docsPath, { redirect: 'manual' });
      let pageUrl = server.baseUrl + docsPath;
      let response = page;
      if (page.status >= 300 && page.status < 400) {
        // A redirect (e.g. to add a trailing slash) must stay on this server.
        const location = new URL(page.headers.get('location') ?? '', pageUrl);
        expect(location.origin).toBe(origin);
        pageUrl = location.href;
        response = await fetch(pageUrl, { redirect: 'manual' });
      }
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/html/);
      const html = await response.text();
      expect(html).toMatch(/<html/i);

      const assets = assetUrls(html, pageUrl);
      expect(assets.filter((u) => u.pathname.endsWith('.js')).length).toBeGreaterThan(0);
      expect(assets.filter((u) => u.pathname.endsWith('.css')).length).toBeGreaterThan(0);
      // Nothing from a CDN: every asset is on this (loopback) server. Checked before any fetch.
      expect(assets.map((u) => u.origin)).toEqual(assets.map(() => origin));
      expect(html).not.toMatch(/(src|href)="(https?:)?\/\//i);

      for (const asset of assets) {
        const res = await fetch(asset, { redirect: 'manual' });
        expect(res.status, asset.href).toBe(200);
        const type = res.headers.get('content-type') ?? '';
        if (asset.pathname.endsWith('.js')) expect(type, asset.href).toMatch(/javascript/);
        else expect(type, asset.href).toMatch(/^text\/css/);
        expect((await res.arrayBuffer()).byteLength, asset.href).toBeGreaterThan(0);
      }
    });
  }

  it('points the UI at a local copy of the same OpenAPI document', async () => {
    const initializer = await fetch(`${server.baseUrl}/docs/static/swagger-initializer.js`);
    expect(initializer.status).toBe(200);
    const source = await initializer.text();
    expect(source).toContain("resolveUrl('./json')");
    // Swagger UI would otherwise send the document to an outside validator service.
    expect(source).toMatch(/validatorUrl:\s*null/);
    const json = await fetch(`${server.baseUrl}/docs/json`);
    expect(json.status).toBe(200);
    expect(await json.json()).toEqual(await ourDocument());
  });
});
