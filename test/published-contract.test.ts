import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, describe, expect, it } from 'vitest';
import { PUBLISHED_CONTRACT_PATH } from './helpers/published-spec.js';

/**
 * spec/published-contract.json is the published contract as facts only, kept in the
 * repository so that no test needs anything outside it (test/openapi.test.ts compares our
 * served /openapi.json with it). These tests keep the copy honest.
 */

const SCRIPT = fileURLToPath(new URL('../scripts/sync-published-contract.mjs', import.meta.url));
const PUBLISHED_FILE = 'polyai-alerts-api-1.0.0.openapi.json';

function sync(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [SCRIPT, ...args], { encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const scratch = mkdtempSync(join(tmpdir(), 'alerts-contract-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
function scratchFile(name: string, content: unknown): string {
  const file = join(scratch, name);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

/**
 * The published document itself is not in the repository (its text is not ours). When a
 * maintainer names it with ALERTS_PUBLISHED_SPEC, the copy must be exactly what the script
 * makes of it; no test looks for it anywhere else.
 */
function publishedDocument(): { path?: string; why?: string } {
  const explicit = process.env.ALERTS_PUBLISHED_SPEC;
  if (explicit) return { path: explicit };
  return { why: `ALERTS_PUBLISHED_SPEC does not name the published ${PUBLISHED_FILE}` };
}

describe('spec/published-contract.json', () => {
  const committed = readFileSync(PUBLISHED_CONTRACT_PATH, 'utf8');

  it('is exactly what scripts/sync-published-contract.mjs makes of the published document', (ctx) => {
    const { path, why } = publishedDocument();
    if (path === undefined) return ctx.skip(`skipped: ${why}`);
    expect(existsSync(path), `ALERTS_PUBLISHED_SPEC=${path} does not exist`).toBe(true);
    const generated = sync(path, '--stdout');
    expect(generated.stderr).toBe('');
    expect(generated.status).toBe(0);
    expect(generated.stdout, 'out of date: run npm run spec:sync -- <published document>').toBe(committed);
    expect(sync(path, '--check').status).toBe(0);
  });

  it('is in the script’s canonical form, with nothing left to strip (the script reproduces it from itself)', () => {
    const again = sync(PUBLISHED_CONTRACT_PATH, '--stdout');
    expect(again.stderr).toBe('');
    expect(again.stdout).toBe(committed);
  });

  it('is a valid OpenAPI 3.1 document with the published operations, schemas and security scheme', async () => {
    const contract = JSON.parse(committed);
    const validator = new Validator();
    const result = await validator.validate(structuredClone(contract));
    expect(result.errors ?? [], JSON.stringify(result.errors, null, 2)).toEqual([]);
    expect(validator.version).toBe('3.1');
    expect(contract.info).toEqual({ title: 'PolyAI Alerts API', version: '1.0.0' });
    const operations = Object.values(contract.paths as Record<string, Record<string, { operationId: string }>>).flatMap((item) =>
      Object.values(item).map((operation) => operation.operationId),
    );
    expect(operations.length).toBe(12);
    expect(Object.keys(contract.webhooks).sort()).toEqual(['alertsResolved', 'alertsTriggered']);
    expect(contract.components.securitySchemes).toEqual({ ApiKeyAuth: { type: 'apiKey', in: 'header', name: 'x-api-key' } });
    expect(contract.components.schemas.WebhookEvent).toBeDefined();
  });

  it('carries no prose: every description is empty, and there is no summary or example', () => {
    const texts: string[] = [];
    const walk = (node: unknown, where: string, inProperties: boolean): void => {
      if (Array.isArray(node)) node.forEach((item, i) => walk(item, `${where}/${i}`, false));
      else if (node !== null && typeof node === 'object') {
        for (const [key, value] of Object.entries(node)) {
          // Keys of a properties map are property names, not keywords (none is called so today).
          if (!inProperties && ['summary', 'example', 'examples', '$comment'].includes(key)) texts.push(`${where}/${key}`);
          if (!inProperties && key === 'description' && value !== '') texts.push(`${where}/${key}`);
          walk(value, `${where}/${key}`, !inProperties && key === 'properties');
        }
      }
    };
    walk(JSON.parse(committed), '#', false);
    expect(texts).toEqual([]);
  });
});

describe('scripts/sync-published-contract.mjs', () => {
  const document = {
    openapi: '3.1.0',
    info: { title: 'T', version: '2.0.0', description: 'prose', 'x-logo': { url: 'https://example.com/logo.png' } },
    servers: [{ url: 'https://api.example.com', description: 'prose' }],
    tags: [{ name: 'things', description: 'prose' }],
    'x-vendor': { anything: true },
    paths: {
      '/things': {
        summary: 'prose',
        get: {
          operationId: 'listThings',
          summary: 'prose',
          'x-internal': true,
          parameters: [{ name: 'q', in: 'query', description: 'prose', example: 'x', schema: { type: 'string', default: 'a' } }],
          responses: {
            '200': {
              description: 'prose',
              headers: { 'x-rate-limit': { description: 'prose', schema: { type: 'integer' } } },
              content: { 'application/json': { schema: { $ref: '#/components/schemas/Thing' }, examples: { one: { value: {} } } } },
            },
            default: { $ref: '#/components/responses/Error', description: 'prose' },
          },
        },
      },
    },
    components: {
      schemas: {
        // A property called description, one called x-tag, one called properties: names stay.
        Thing: {
          type: 'object',
          description: 'prose',
          required: ['description'],
          properties: {
            description: { type: 'string', description: 'prose', example: 'x' },
            'x-tag': { type: 'string' },
            properties: { type: 'object', properties: { summary: { type: 'string' } }, default: { description: 'data, kept', b: 1 } },
          },
          example: { description: 'x' },
        },
        description: { type: 'string' },
      },
      responses: { Error: { description: 'prose', content: { 'application/json': { schema: { type: 'object' } } } } },
    },
  };

  it('drops prose, samples and extensions, keeps names and data, sorts keys and keeps array order', () => {
    const result = sync(scratchFile('doc.json', document), '--stdout');
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const { 'x-generated-by': note, ...copy } = JSON.parse(result.stdout);
    expect(note).toMatch(/npm run spec:sync/);
    expect(copy).toEqual({
      openapi: '3.1.0',
      info: { title: 'T', version: '2.0.0' },
      servers: [{ url: 'https://api.example.com' }],
      tags: [{ name: 'things' }],
      paths: {
        '/things': {
          get: {
            operationId: 'listThings',
            parameters: [{ name: 'q', in: 'query', schema: { type: 'string', default: 'a' } }],
            responses: {
              '200': {
                description: '',
                headers: { 'x-rate-limit': { schema: { type: 'integer' } } },
                content: { 'application/json': { schema: { $ref: '#/components/schemas/Thing' } } },
              },
              default: { $ref: '#/components/responses/Error' },
            },
          },
        },
      },
      components: {
        schemas: {
          Thing: {
            type: 'object',
            required: ['description'],
            properties: {
              description: { type: 'string' },
              'x-tag': { type: 'string' },
              properties: { type: 'object', properties: { summary: { type: 'string' } }, default: { b: 1, description: 'data, kept' } },
            },
          },
          description: { type: 'string' },
        },
        responses: { Error: { description: '', content: { 'application/json': { schema: { type: 'object' } } } } },
      },
    });
    // Keys sorted at every level (after the note), whatever the source order.
    const keysInOrder = (node: unknown): boolean =>
      node === null || typeof node !== 'object'
        ? true
        : Array.isArray(node)
          ? node.every(keysInOrder)
          : Object.keys(node).every((key, i, keys) => i === 0 || keys[i - 1]! < key) && Object.values(node).every(keysInOrder);
    expect(keysInOrder(copy)).toBe(true);
    expect(result.stdout.endsWith('}\n')).toBe(true);
  });

  it('gives the same bytes for the same facts, however the source is laid out', () => {
    const reordered = JSON.parse(JSON.stringify(document), (_key, value) =>
      value !== null && typeof value === 'object' && !Array.isArray(value) ? Object.fromEntries(Object.entries(value).reverse()) : value,
    );
    const a = sync(scratchFile('a.json', document), '--stdout');
    const b = sync(scratchFile('b.json', JSON.stringify(reordered, null, 4)), '--stdout');
    expect(b.stdout).toBe(a.stdout);
  });

  it('refuses a document whose $refs would point at something it dropped, or that is not OpenAPI 3', () => {
    const dangling = structuredClone(document) as Record<string, any>;
    dangling.paths['/things'].get.responses['200'].content['application/json'].schema = { $ref: '#/components/examples/Thing' };
    const refused = sync(scratchFile('dangling.json', dangling), '--stdout');
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/\$refs that do not resolve in the copy: #\/components\/examples\/Thing/);
    expect(sync(scratchFile('swagger2.json', { swagger: '2.0', paths: {} }), '--stdout').stderr).toMatch(/not an OpenAPI 3 document/);
    expect(sync('--stdout').status).toBe(2);
  });
});
