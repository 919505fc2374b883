/**
 * The one registry of error codes the service can answer with. Internal code throws
 * `AppError`; the HTTP error handler maps `status` and `message` to the response.
 */
export const ERROR_CODES = {
  validation: { status: 400 },
  unauthorized: { status: 401 },
  notFound: { status: 404 },
  limitExceeded: { status: 409 },
  payloadTooLarge: { status: 413 },
  unsupportedMediaType: { status: 415 },
  malformedId: { status: 422 },
  internal: { status: 500 },
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

  constructor(code: ErrorCode, message: string, errors?: FieldError[]) {
    super(message);
    this.name = 'AppError';
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.errors = errors;
  }
}

export const notFound = (what: string, id: string): AppError => new AppError('notFound', `${what} ${id} not found`);
