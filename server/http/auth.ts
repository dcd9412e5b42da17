// Bearer API keys with roles. The key lookup lives in the access module; the
// root app hands it in as the `authenticate` variable and this guard uses it.
import type { MiddlewareHandler } from 'hono';
import { DomainError } from '../lib/errors.ts';
import { roleAllows, type HttpEnv, type Role } from './types.ts';

export function bearerToken(header: string | undefined): string | null {
  if (!header) return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1] : null;
}

export function requireRole(role: Role): MiddlewareHandler<HttpEnv> {
  return async (c, next) => {
    const token = bearerToken(c.req.header('authorization'));
    const principal = token ? await c.get('authenticate')(token) : null;
    if (!principal) {
      throw new DomainError(
        'unauthorized',
        'unauthorized',
        'a valid API key is required (Authorization: Bearer <key>)',
      );
    }
    if (!roleAllows(principal.role, role)) {
      throw new DomainError(
        'forbidden',
        'forbidden',
        `this action needs the ${role} role; the key has ${principal.role}`,
      );
    }
    c.set('principal', principal);
    await next();
  };
}
