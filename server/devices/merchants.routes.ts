import { createRoute } from '@hono/zod-openapi';
import { createMerchantSchema, tradingHoursSchema } from '../../protocol/http.ts';
import { body, errors, guarded, idParam, json, listQuery, page, router, z } from '../http/openapi.ts';
import type { Merchants } from './merchants.service.ts';

const merchantSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    timezone: z.string(),
    tradingHours: tradingHoursSchema,
    externalRef: z.string().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('Merchant');

export function merchantRoutes(deps: { merchants: Merchants }) {
  const app = router();
  app.openapi(
    createRoute({
      method: 'post',
      path: '/merchants',
      ...guarded('operator', 'merchants'),
      summary: 'Create a merchant',
      request: body(createMerchantSchema),
      responses: { 201: json(merchantSchema), 400: errors[400], 422: errors[422] },
    }),
    async (c) => c.json(await deps.merchants.create(c.get('principal'), c.req.valid('json')), 201),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/merchants',
      ...guarded('viewer', 'merchants'),
      summary: 'List merchants',
      request: { query: listQuery },
      responses: { 200: json(page(merchantSchema)) },
    }),
    async (c) => c.json(await deps.merchants.list(c.req.valid('query')), 200),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/merchants/{id}',
      ...guarded('viewer', 'merchants'),
      summary: 'Get a merchant',
      request: { params: idParam },
      responses: { 200: json(merchantSchema), 404: errors[404] },
    }),
    async (c) => c.json(await deps.merchants.get(c.req.valid('param').id), 200),
  );

  app.openapi(
    createRoute({
      method: 'patch',
      path: '/merchants/{id}',
      ...guarded('operator', 'merchants'),
      summary: 'Change a merchant (timezone, trading hours…)',
      request: { params: idParam, ...body(createMerchantSchema.partial()) },
      responses: { 200: json(merchantSchema), 400: errors[400], 404: errors[404], 422: errors[422] },
    }),
    async (c) =>
      c.json(await deps.merchants.update(c.get('principal'), c.req.valid('param').id, c.req.valid('json')), 200),
  );
  return app;
}
