// Helpers that keep route declarations short: every route is declared with its
// schemas, so /openapi.json documents exactly what is validated.
import { OpenAPIHono, z } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { validationError } from './errors.ts';
import type { HttpEnv, Role } from './types.ts';
import { requireRole } from './auth.ts';

export { z };

export function router(): OpenAPIHono<HttpEnv> {
  return new OpenAPIHono<HttpEnv>({
    defaultHook: (result, c) => {
      if (!result.success) return validationError(c, result.error as never, result.target);
    },
  });
}

export const errorSchema = z
  .object({ error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }) })
  .openapi('Error');

const ERRORS = {
  400: { description: 'invalid input', content: { 'application/json': { schema: errorSchema } } },
  401: { description: 'missing or unknown API key', content: { 'application/json': { schema: errorSchema } } },
  403: { description: 'role not allowed', content: { 'application/json': { schema: errorSchema } } },
  404: { description: 'not found', content: { 'application/json': { schema: errorSchema } } },
  409: { description: 'conflict', content: { 'application/json': { schema: errorSchema } } },
  422: { description: 'rule broken', content: { 'application/json': { schema: errorSchema } } },
} as const;

export function json<T extends z.ZodType>(schema: T, description = 'OK') {
  return { description, content: { 'application/json': { schema } } };
}

export function body<T extends z.ZodType>(schema: T) {
  return { body: { content: { 'application/json': { schema } }, required: true } };
}

/** Common route options: role guard, bearer security, error responses. */
export function guarded(
  role: Role,
  tag: string,
): {
  middleware: MiddlewareHandler<HttpEnv>[];
  security: { bearerAuth: string[] }[];
  tags: string[];
} {
  return { middleware: [requireRole(role)], security: [{ bearerAuth: [] }], tags: [tag] };
}

export const errors = ERRORS;

export const listQuery = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(50).openapi({ description: 'page size (1-500)' }),
  cursor: z.string().max(200).optional().openapi({ description: 'nextCursor of the previous page' }),
});

export const idParam = z.object({ id: z.string().min(1).max(100) });

export function page<T extends z.ZodType>(item: T) {
  return z.object({ items: z.array(item), nextCursor: z.string().nullable() });
}
