import { Ajv, type ErrorObject } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';
import type { FieldError } from '../domain/errors.js';

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

/**
 * Bodies are validated strictly (a string "5" is not an integer); query strings and path
 * parameters are text by nature, so their values are coerced ("true" becomes true).
 */
export function createValidatorCompiler(): FastifySchemaCompiler<unknown> {
  const strict = newAjv(false);
  const coercing = newAjv(true);
  return ({ schema, httpPart }) => (httpPart === 'body' ? strict : coercing).compile(schema as object);
}

/** `/events/17/latency_ms` becomes `events[17].latency_ms`. */
function fieldPath(instancePath: string): string {
  return instancePath
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((path, part) => (/^\d+$/.test(part) ? `${path}[${part}]` : path === '' ? part : `${path}.${part}`), '');
}

/** One entry per failing field, named the way a client addressed it. */
export function fieldErrors(errors: ErrorObject[]): FieldError[] {
  const seen = new Set<string>();
  const result: FieldError[] = [];
  for (const error of errors) {
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
  return result;
}
