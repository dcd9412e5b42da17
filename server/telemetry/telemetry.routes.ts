// HTTP: heartbeat history and device events.
import { createRoute } from '@hono/zod-openapi';
import { errors, guarded, idParam, json, listQuery, router, z } from '../http/openapi.ts';
import type { DeviceEvents } from './events.ts';
import type { History } from './history.service.ts';

const historyQuery = listQuery.extend({
  from: z.string().datetime().optional().openapi({ description: 'ISO time; default: 24 h before `to`' }),
  to: z.string().datetime().optional().openapi({ description: 'ISO time; default: now' }),
  resolution: z.enum(['raw', 'hour']).default('raw'),
});

export function telemetryRoutes(deps: { history: History; events: DeviceEvents }) {
  const app = router();
  app.openapi(
    createRoute({
      method: 'get',
      path: '/devices/{id}/heartbeats',
      ...guarded('viewer', 'devices'),
      summary: 'Heartbeat history: raw (30 days) or hourly roll-ups (1 year)',
      request: { params: idParam, query: historyQuery },
      responses: {
        200: json(
          z.object({
            resolution: z.string(),
            items: z.array(z.record(z.string(), z.unknown())),
            nextCursor: z.string().nullable(),
          }),
        ),
        400: errors[400],
        404: errors[404],
      },
    }),
    async (c) => c.json(await deps.history.list(c.req.valid('param').id, c.req.valid('query')), 200),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/devices/{id}/events',
      ...guarded('viewer', 'devices'),
      summary: 'Events the device reported, newest first',
      request: { params: idParam, query: z.object({ limit: z.coerce.number().int().min(1).max(500).default(50) }) },
      responses: { 200: json(z.object({ items: z.array(z.record(z.string(), z.unknown())), nextCursor: z.null() })) },
    }),
    async (c) =>
      c.json(
        { items: await deps.events.list(c.req.valid('param').id, c.req.valid('query').limit), nextCursor: null },
        200,
      ),
  );
  return app;
}
