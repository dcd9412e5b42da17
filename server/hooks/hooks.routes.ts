// /api/v1/hooks and /api/v1/deliveries. Managing endpoints is admin work (they
// send fleet data out); pings and redeliveries are operator work; reads are open to viewers.
import { createRoute } from '@hono/zod-openapi';
import { body, errors, guarded, idParam, json, listQuery, page, router } from '../http/openapi.ts';
import { badRequest } from '../lib/errors.ts';
import type { HookDeliveries } from './deliveries.service.ts';
import {
  deliveryQuery,
  deliverySchema,
  hookCreatedSchema,
  hookPatchSchema,
  hookSchema,
  newHookSchema,
  rotateSecretSchema,
  rotatedSecretSchema,
} from './hooks.schemas.ts';
import type { HookSubscriptions } from './hooks.service.ts';

export function hookRoutes(deps: { subscriptions: HookSubscriptions; deliveries: HookDeliveries }) {
  const { subscriptions, deliveries } = deps;
  const app = router();
  const tag = 'hooks';

  app.openapi(
    createRoute({
      method: 'post',
      path: '/hooks',
      ...guarded('admin', tag),
      summary: 'Subscribe a webhook endpoint (the secret is shown once)',
      request: body(newHookSchema),
      responses: { 201: json(hookCreatedSchema), 400: errors[400], 422: errors[422] },
    }),
    async (c) => c.json(await subscriptions.create(c.get('principal'), c.req.valid('json')), 201),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/hooks',
      ...guarded('viewer', tag),
      summary: 'List webhook subscriptions',
      request: { query: listQuery },
      responses: { 200: json(page(hookSchema)) },
    }),
    async (c) => c.json(await subscriptions.list(c.req.valid('query')), 200),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/hooks/{id}',
      ...guarded('viewer', tag),
      summary: 'Get a webhook subscription',
      request: { params: idParam },
      responses: { 200: json(hookSchema), 404: errors[404] },
    }),
    async (c) => c.json(await subscriptions.get(c.req.valid('param').id), 200),
  );

  app.openapi(
    createRoute({
      method: 'patch',
      path: '/hooks/{id}',
      ...guarded('admin', tag),
      summary: 'Change an endpoint: URL, events, filter, format, config, description (secret and log stay)',
      request: { params: idParam, ...body(hookPatchSchema) },
      responses: { 200: json(hookSchema), 400: errors[400], 404: errors[404], 422: errors[422] },
    }),
    async (c) =>
      c.json(await subscriptions.update(c.get('principal'), c.req.valid('param').id, c.req.valid('json')), 200),
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/hooks/{id}',
      ...guarded('admin', tag),
      summary: 'Delete a webhook subscription and its delivery log',
      request: { params: idParam },
      responses: { 204: { description: 'deleted' }, 404: errors[404] },
    }),
    async (c) => {
      await subscriptions.remove(c.get('principal'), c.req.valid('param').id);
      return c.body(null, 204);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/hooks/{id}/rotate-secret',
      ...guarded('admin', tag),
      summary: 'New secret (shown once); the old one keeps signing during the overlap',
      request: {
        params: idParam,
        body: { content: { 'application/json': { schema: rotateSecretSchema } }, required: false },
      },
      responses: { 200: json(rotatedSecretSchema), 404: errors[404] },
    }),
    async (c) => {
      // The body is optional, so it is parsed here rather than by the route's validator.
      const parsed = rotateSecretSchema.safeParse((await c.req.json().catch(() => ({}))) ?? {});
      if (!parsed.success)
        throw badRequest(
          'invalid_request',
          `body field '${parsed.error.issues[0]?.path.join('.')}': ${parsed.error.issues[0]?.message}`,
        );
      return c.json(
        await subscriptions.rotateSecret(c.get('principal'), c.req.valid('param').id, parsed.data.overlapSeconds),
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/hooks/{id}/enable',
      ...guarded('admin', tag),
      summary: 'Re-enable a disabled endpoint',
      request: { params: idParam },
      responses: { 200: json(hookSchema), 404: errors[404], 409: errors[409] },
    }),
    async (c) => c.json(await subscriptions.enable(c.get('principal'), c.req.valid('param').id), 200),
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/hooks/{id}/test',
      ...guarded('operator', tag),
      summary: 'Send a hook.ping to this endpoint',
      request: { params: idParam },
      responses: { 202: json(deliverySchema), 404: errors[404], 409: errors[409] },
    }),
    async (c) => c.json(await deliveries.ping(c.req.valid('param').id), 202),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/hooks/{id}/deliveries',
      ...guarded('viewer', tag),
      summary: 'Delivery log, newest first (request body, attempts, status, latency, error)',
      request: { params: idParam, query: listQuery.extend(deliveryQuery.shape) },
      responses: { 200: json(page(deliverySchema)), 404: errors[404] },
    }),
    async (c) => c.json(await deliveries.list(c.req.valid('param').id, c.req.valid('query')), 200),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/deliveries/{id}',
      ...guarded('viewer', tag),
      summary: 'One delivery with its attempts',
      request: { params: idParam },
      responses: { 200: json(deliverySchema), 404: errors[404] },
    }),
    async (c) => c.json(await deliveries.get(c.req.valid('param').id), 200),
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/deliveries/{id}/redeliver',
      ...guarded('operator', tag),
      summary: 'Send a finished delivery again (same webhook-id)',
      request: { params: idParam },
      responses: { 202: json(deliverySchema), 404: errors[404], 409: errors[409] },
    }),
    async (c) => c.json(await deliveries.redeliver(c.req.valid('param').id), 202),
  );

  return app;
}
