import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';
import { MAX_LISTED_ERRORS, type FieldError } from '../domain/errors.js';

// ajv-formats is CommonJS; under NodeNext its default export arrives wrapped.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

function newAjv(coerceTypes: boolean): Ajv {
  const ajv = new Ajv({
    // Unknown body fields must be rejected, never silently dropped.
    removeAdditional: false,
    useDefaults: true,
    coerceTypes,
    allErrors: true,
    strict: false,
  });
  addFormats(ajv);
  return ajv;
}

type SizeCheck = (data: unknown, path: string) => ErrorObject | undefined;

const isPlainObject = (data: unknown): data is Record<string, unknown> =>
  typeof data === 'object' && data !== null && !Array.isArray(data);

const pointer = (path: string, key: string | number) => `${path}/${String(key).replace(/~/g, '~0').replace(/\//g, '~1')}`;

/**
 * The size limits (`maxItems`, `maxProperties`) of a schema, as a check that costs nothing per
 * item: it reads array lengths and key counts, and descends into items only once their
 * array is known to be within its limit. Undefined when the schema has no such limit.
 * Follows `properties`, `additionalProperties`, `items` and `allOf`; the branches of `anyOf`
 * and `oneOf` are left to the validator, since which one applies is not known here.
 */
function sizeCheck(schema: unknown, schemaPath: string): SizeCheck | undefined {
  if (!isPlainObject(schema)) return undefined;
  const checks: SizeCheck[] = [];
  const maxItems = typeof schema.maxItems === 'number' ? schema.maxItems : undefined;
  const maxProperties = typeof schema.maxProperties === 'number' ? schema.maxProperties : undefined;
  if (maxItems !== undefined) {
    checks.push((data, path) =>
      Array.isArray(data) && data.length > maxItems
        ? { instancePath: path, schemaPath: `${schemaPath}/maxItems`, keyword: 'maxItems', params: { limit: maxItems }, message: `must NOT have more than ${maxItems} items` }
        : undefined,
    );
  }
  if (maxProperties !== undefined) {
    checks.push((data, path) => {
      if (!isPlainObject(data)) return undefined;
      let count = 0;
      for (const key in data) if (Object.hasOwn(data, key) && ++count > maxProperties) break;
      return count > maxProperties
        ? { instancePath: path, schemaPath: `${schemaPath}/maxProperties`, keyword: 'maxProperties', params: { limit: maxProperties }, message: `must NOT have more than ${maxProperties} properties` }
        : undefined;
    });
  }
  const items = sizeCheck(schema.items, `${schemaPath}/items`);
  if (items) {
    checks.push((data, path) => {
      if (!Array.isArray(data)) return undefined;
      for (let i = 0; i < data.length; i++) {
        const error = items(data[i], pointer(path, i));
        if (error) return error;
      }
      return undefined;
    });
  }
  const properties = isPlainObject(schema.properties) ? schema.properties : {};
  const named = Object.entries(properties)
    .map(([key, sub]) => [key, sizeCheck(sub, `${schemaPath}/properties/${key}`)] as const)
    .filter((entry): entry is readonly [string, SizeCheck] => entry[1] !== undefined);
  if (named.length > 0) {
    checks.push((data, path) => {
      if (!isPlainObject(data)) return undefined;
      for (const [key, check] of named) {
        if (!Object.hasOwn(data, key)) continue;
        const error = check(data[key], pointer(path, key));
        if (error) return error;
      }
      return undefined;
    });
  }
  const additional = sizeCheck(schema.additionalProperties, `${schemaPath}/additionalProperties`);
  if (additional) {
    checks.push((data, path) => {
      if (!isPlainObject(data)) return undefined;
      for (const key in data) {
        if (!Object.hasOwn(data, key) || Object.hasOwn(properties, key)) continue;
        const error = additional(data[key], pointer(path, key));
        if (error) return error;
      }
      return undefined;
    });
  }
  if (Array.isArray(schema.allOf)) {
    schema.allOf.forEach((sub, i) => {
      const check = sizeCheck(sub, `${schemaPath}/allOf/${i}`);
      if (check) checks.push(check);
    });
  }
  if (checks.length === 0) return undefined;
  if (checks.length === 1) return checks[0];
  return (data, path) => {
    for (const check of checks) {
      const error = check(data, path);
      if (error) return error;
    }
    return undefined;
  };
}

/**
 * Runs the size checks first: an array over its `maxItems` is rejected with that one error,
 * before any per-item work (with `allErrors`, the validator would otherwise describe every
 * item of a two-million-item array).
 */
function withSizeChecks(validate: ValidateFunction, schema: unknown): ValidateFunction {
  const check = sizeCheck(schema, '#');
  if (!check) return validate;
  const guarded = ((data: unknown, context?: Parameters<ValidateFunction>[1]) => {
    const error = check(data, '');
    if (error) {
      guarded.errors = [error];
      return false;
    }
    const valid = validate(data, context);
    guarded.errors = validate.errors;
    return valid;
  }) as ValidateFunction;
  // Fastify passes the parent data (so that a root value can be coerced) when this is set.
  Object.assign(guarded, { schema: validate.schema, schemaEnv: validate.schemaEnv, errors: null });
  return guarded;
}

/**
 * Bodies are validated strictly (a string "5" is not an integer); query strings and path
 * parameters are text by nature, so their values are coerced ("true" becomes true).
 */
export function createValidatorCompiler(): FastifySchemaCompiler<unknown> {
  const strict = newAjv(false);
  const coercing = newAjv(true);
  return ({ schema, httpPart }) => withSizeChecks((httpPart === 'body' ? strict : coercing).compile(schema as object), schema);
}

/** `/events/17/latency_ms` becomes `events[17].latency_ms`. */
function fieldPath(instancePath: string): string {
  return instancePath
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((path, part) => (/^\d+$/.test(part) ? `${path}[${part}]` : path === '' ? part : `${path}.${part}`), '');
}

/**
 * One entry per failing field, named the way a client addressed it: at most `limit` of them
 * (in the validator's order), and how many problems there were in all (those past the limit
 * are counted, not worded).
 */
export function fieldErrors(errors: readonly ErrorObject[], limit = MAX_LISTED_ERRORS): { errors: FieldError[]; total: number } {
  const seen = new Set<string>();
  const result: FieldError[] = [];
  let unlisted = 0;
  for (const error of errors) {
    if (result.length >= limit) {
      unlisted += 1;
      continue;
    }
    const base = fieldPath(error.instancePath);
    let field = base;
    let message: string;
    switch (error.keyword) {
      case 'required':
        field = base ? `${base}.${error.params.missingProperty}` : String(error.params.missingProperty);
        message = 'is required';
        break;
      case 'additionalProperties':
        field = base ? `${base}.${error.params.additionalProperty}` : String(error.params.additionalProperty);
        message = 'is not a known field';
        break;
      case 'enum':
        message = `must be one of ${(error.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
        break;
      case 'pattern':
        message = field.endsWith('url') || field === 'url' ? 'must be an https:// URL' : `must match ${error.params.pattern}`;
        break;
      case 'format':
        message = `must be a valid ${error.params.format}`;
        break;
      default:
        message = error.message ?? 'is invalid';
    }
    const key = `${field}\u0000${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    result.push({ field: field || '(body)', message });
  }
  return { errors: result, total: result.length + unlisted };
}
