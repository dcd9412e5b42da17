import { createRoute } from '@hono/zod-openapi';
import { ROLES } from '../http/types.ts';
import { body, errors, guarded, idParam, json, listQuery, page, router, z } from '../http/openapi.ts';
import type { ApiKeys } from './api-keys.service.ts';
import type { Audit } from './audit.service.ts';

const createKeySchema = z
  .object({
    name: z.string().min(1).max(100),
    role: z.enum(ROLES),
  })
  .openapi('NewApiKey');

const apiKeySchema = z
  .object({
    id: z.string(),
    name: z.string(),
    role: z.string(),
    createdBy: z.string().nullable(),
    createdAt: z.string(),
    lastUsedAt: z.string().nullable(),
    revokedAt: z.string().nullable(),
  })
  .openapi('ApiKey');

const auditEntrySchema = z
  .object({
    id: z.string(),
    at: z.string(),
    actor: z.object({ keyId: z.string().nullable(), name: z.string().nullable() }),
    action: z.string(),
    target: z.object({ type: z.string(), id: z.string().nullable() }),
    details: z.unknown(),
  })
  .openapi('AuditEntry');

export function accessRoutes(deps: { apiKeys: ApiKeys; audit: Audit }) {
  const app = router();

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api-keys',
      ...guarded('admin', 'access'),
      summary: 'Create an API key (the token is shown once)',
      request: body(createKeySchema),
      responses: {
        201: json(z.object({ id: z.string(), name: z.string(), role: z.string(), token: z.string() })),
        400: errors[400],
      },
    }),
    async (c) => c.json(await deps.apiKeys.create(c.get('principal'), c.req.valid('json')), 201),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api-keys',
      ...guarded('admin', 'access'),
      summary: 'List API keys',
      request: { query: listQuery },
      responses: { 200: json(page(apiKeySchema)) },
    }),
    async (c) => c.json(await deps.apiKeys.list(c.req.valid('query')), 200),
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/api-keys/{id}',
      ...guarded('admin', 'access'),
      summary: 'Revoke an API key',
      request: { params: idParam },
      responses: { 204: { description: 'revoked' }, 404: errors[404] },
    }),
    async (c) => {
      await deps.apiKeys.revoke(c.get('principal'), c.req.valid('param').id);
      return c.body(null, 204);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/audit',
      ...guarded('viewer', 'access'),
      summary: 'Read the audit log, newest first',
      request: {
        query: listQuery.extend({
          targetType: z.string().max(64).optional(),
          targetId: z.string().max(100).optional(),
          action: z.string().max(100).optional(),
        }),
      },
      responses: { 200: json(page(auditEntrySchema)) },
    }),
    async (c) => c.json(await deps.audit.list(c.req.valid('query')), 200),
  );

  return app;
}
