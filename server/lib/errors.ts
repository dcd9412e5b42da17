// Services speak domain errors; server/http/errors.ts alone maps them to HTTP.
export const ERROR_KINDS = [
  'bad_request',
  'unauthorized',
  'forbidden',
  'not_found',
  'conflict',
  'too_large',
  'unprocessable',
  'rate_limited',
  'unavailable',
] as const;
export type ErrorKind = (typeof ERROR_KINDS)[number];

export class DomainError extends Error {
  constructor(
    readonly kind: ErrorKind,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

export const notFound = (what: string, id: string) =>
  new DomainError('not_found', `${what}_not_found`, `${what.replace(/_/g, ' ')} ${id} does not exist`);

export const conflict = (code: string, message: string, details?: unknown) =>
  new DomainError('conflict', code, message, details);

export const unprocessable = (code: string, message: string, details?: unknown) =>
  new DomainError('unprocessable', code, message, details);

export const badRequest = (code: string, message: string, details?: unknown) =>
  new DomainError('bad_request', code, message, details);

/** One line for an operator: the message of an error without its stack. */
export function errorLine(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return errorLine(err.errors[0]);
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}
