/**
 * The one registry of error codes the service can answer with. Internal code throws
 * `AppError`; the HTTP error handler maps `status` and `message` to the response.
 */
export const ERROR_CODES = {
  validation: { status: 400 },
  unauthorized: { status: 401 },
  notFound: { status: 404 },
  limitExceeded: { status: 409 },
  /** The request contradicts an earlier one (an idempotency key reused for another body). */
  conflict: { status: 409 },
  payloadTooLarge: { status: 413 },
  unsupportedMediaType: { status: 415 },
  malformedId: { status: 422 },
  /** A per-account allowance is in use (open live streams); try again once one ends. */
  tooManyRequests: { status: 429 },
  internal: { status: 500 },
  /** The service cannot do it now (storage full or failing, shutting down); try again later. */
  unavailable: { status: 503 },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface FieldError {
  field: string;
  message: string;
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly errors: FieldError[] | undefined;

  constructor(code: ErrorCode, message: string, errors?: FieldError[], options?: ErrorOptions) {
    super(message, options);
    this.name = 'AppError';
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.errors = errors;
  }
}

export const notFound = (what: string, id: string): AppError => new AppError('notFound', `${what} ${id} not found`);

/** Problems listed in one error response's `errors`; the rest are only counted. */
export const MAX_LISTED_ERRORS = 100;
/** Problems named in an error's message; the others are summed up as "and N more". */
export const MAX_SUMMARIZED_ERRORS = 5;
/** Longest field name or problem text in an error response; longer ones are cut. */
export const MAX_ERROR_TEXT_LENGTH = 200;

/** `text`, cut to `max` characters with an ellipsis when longer (field names come from clients). */
export function clip(text: string, max = MAX_ERROR_TEXT_LENGTH): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/**
 * A request that failed validation. However many problems there are, the answer stays small:
 * the message names the first few, `errors` lists the first 100, and `total` (all problems,
 * when only some were passed) is counted in the message.
 */
export function invalidRequest(
  code: 'validation' | 'malformedId',
  what: string,
  problems: readonly FieldError[],
  total = problems.length,
): AppError {
  const listed = problems.slice(0, MAX_LISTED_ERRORS).map((e) => ({ field: clip(e.field), message: clip(e.message) }));
  const named = listed.slice(0, MAX_SUMMARIZED_ERRORS).map((e) => (e.field === '(body)' ? e.message : `${e.field} ${e.message}`));
  let message = named.length > 0 ? `${what}: ${named.join('; ')}` : what;
  const rest = Math.max(total, listed.length) - named.length;
  if (rest > 0) message += `; and ${rest} more`;
  if (total > listed.length) message += ` (the first ${listed.length} are listed in errors)`;
  return new AppError(code, message, listed);
}
