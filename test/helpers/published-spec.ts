import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { ValidateFunction } from 'ajv';

const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

/**
 * The published contract, as facts only (paths, operations, parameters, schemas, statuses;
 * no prose or examples), kept in the repository so that the tests need nothing outside it.
 * scripts/sync-published-contract.mjs regenerates it from the published document, and
 * test/published-contract.test.ts checks that it is what the script makes of that document.
 */
export const PUBLISHED_CONTRACT_PATH = fileURLToPath(new URL('../../spec/published-contract.json', import.meta.url));

type JsonObject = Record<string, unknown>;
export const publishedSpec = JSON.parse(readFileSync(PUBLISHED_CONTRACT_PATH, 'utf8')) as JsonObject & {
  paths: Record<string, Record<string, { responses: Record<string, JsonObject> }>>;
  components: { schemas: Record<string, JsonObject>; responses: Record<string, JsonObject> };
};

const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema(publishedSpec, 'published');

const cache = new Map<string, ValidateFunction>();
function validatorFor(pointer: string): ValidateFunction {
  let validate = cache.get(pointer);
  if (!validate) {
    validate = ajv.compile({ $ref: `published#${pointer}` });
    cache.set(pointer, validate);
  }
  return validate;
}

const escape = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1');

/** The published path template a concrete path belongs to, e.g. /v1/alert-rules/{rule_id}. */
export function publishedTemplate(path: string): string | undefined {
  const bare = path.split('?')[0] ?? path;
  return Object.keys(publishedSpec.paths).find((template) =>
    new RegExp('^' + template.replace(/\{[^}]+\}/g, '[^/]+') + '$').test(bare),
  );
}

/** Validates a JSON schema of the published document (by component name) against a value. */
export function validateComponent(name: string, value: unknown): string[] {
  const validate = validatorFor(`/components/schemas/${name}`);
  return validate(value) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);
}

/**
 * Checks a response body against what the published document says for that operation and
 * status. Statuses the document does not list for the operation (such as 413 and 415) must
 * still carry its Error shape. Returns the problems (empty when valid).
 */
export function validatePublishedResponse(method: string, path: string, status: number, body: unknown): string[] {
  const template = publishedTemplate(path);
  const operation = template ? publishedSpec.paths[template]?.[method.toLowerCase()] : undefined;
  if (!operation) return [];
  const documented = operation.responses[String(status)];
  if (status === 204) return body === undefined ? [] : ['204 must have no body'];
  if (!documented) {
    if (status < 400) return [`status ${status} is not documented for ${method} ${template}`];
    const problems = validateComponent('Error', body);
    if (typeof (body as { message?: unknown })?.message !== 'string') problems.push('error body has no message');
    return problems;
  }
  const pointer = `/paths/${escape(template!)}/${method.toLowerCase()}/responses/${status}/content/application~1json/schema`;
  const ref = (documented as { $ref?: string }).$ref;
  const resolved = ref ? `${ref.slice(1)}/content/application~1json/schema` : pointer;
  const validate = validatorFor(resolved);
  const problems = validate(body) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);
  if (status >= 400 && typeof (body as { message?: unknown })?.message !== 'string') problems.push('error body has no message');
  return problems;
}
