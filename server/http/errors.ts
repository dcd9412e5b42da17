// The one place that speaks HTTP status codes (HOUSE-RULES §4).
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { ZodError } from 'zod';
import { DomainError, type ErrorKind } from '../lib/errors.ts';
import type { HttpEnv } from './types.ts';

const STATUS: Record<ErrorKind, ContentfulStatusCode> = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  unprocessable: 422,
  rate_limited: 429,
  unavailable: 503,
};

export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

export function errorResponse(
  c: Context,
  status: ContentfulStatusCode,
  code: string,
  message: string,
  details?: unknown,
) {
  const body: ErrorBody = { error: { code, message, ...(details === undefined ? {} : { details }) } };
  return c.json(body, status);
}

/** A zod failure as a 400 whose message names the first bad field. */
export function validationError(c: Context, error: ZodError, where: string) {
  const issues = error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
  const first = issues[0];
  const field = first?.path ? `${where} field '${first.path}'` : where;
  return errorResponse(c, 400, 'invalid_request', `${field}: ${first?.message ?? 'invalid'}`, { issues });
}

export function onError(err: Error, c: Context<HttpEnv>) {
  if (err instanceof DomainError) return errorResponse(c, STATUS[err.kind], err.code, err.message, err.details);
  if (err instanceof HTTPException) {
    const status = err.status as ContentfulStatusCode;
    if (status === 400) return errorResponse(c, 400, 'invalid_request', err.message || 'malformed request');
    return errorResponse(c, status, `http_${status}`, err.message || 'request failed');
  }
  if (err instanceof SyntaxError) return errorResponse(c, 400, 'invalid_json', 'request body is not valid JSON');
  c.get('log')?.error({ err }, 'unhandled error');
  return errorResponse(c, 500, 'internal', 'internal server error');
}
