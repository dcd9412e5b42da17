// HTTP: maintenance tickets and the terminal swap.
import { createRoute } from '@hono/zod-openapi';
import { body, errors, guarded, idParam, json, listQuery, page, router } from '../http/openapi.ts';
import type { Swap } from './swap.service.ts';
import { newTicketSchema, swapSchema, ticketPatchSchema, ticketQuery, ticketSchema } from './tickets.schemas.ts';
import type { Tickets } from './tickets.service.ts';

export function ticketRoutes(deps: { tickets: Tickets; swap: Swap }) {
  const { tickets, swap } = deps;
  const app = router();
  const tag = 'maintenance';

  app.openapi(
    createRoute({
      method: 'get',
      path: '/tickets',
      ...guarded('viewer', tag),
      summary: 'List maintenance tickets, newest first',
      request: { query: listQuery.extend(ticketQuery.shape) },
      responses: { 200: json(page(ticketSchema)), 400: errors[400] },
    }),
    async (c) => c.json(await tickets.list(c.req.valid('query')), 200),
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/tickets',
      ...guarded('operator', tag),
      summary: 'Open a ticket (the warranty is decided and explained)',
      request: body(newTicketSchema),
      responses: { 201: json(ticketSchema), 400: errors[400], 404: errors[404], 422: errors[422] },
    }),
    async (c) => c.json(await tickets.create(c.get('principal'), c.req.valid('json')), 201),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/tickets/{id}',
      ...guarded('viewer', tag),
      summary: 'Get a ticket',
      request: { params: idParam },
      responses: { 200: json(ticketSchema), 404: errors[404] },
    }),
    async (c) => c.json(await tickets.get(c.req.valid('param').id), 200),
  );

  app.openapi(
    createRoute({
      method: 'patch',
      path: '/tickets/{id}',
      ...guarded('operator', tag),
      summary:
        'Change a ticket: state (open → scheduled → in_progress → resolved | cancelled), schedule, assignee, damage',
      request: { params: idParam, ...body(ticketPatchSchema) },
      responses: { 200: json(ticketSchema), 400: errors[400], 404: errors[404], 422: errors[422] },
    }),
    async (c) => c.json(await tickets.update(c.get('principal'), c.req.valid('param').id, c.req.valid('json')), 200),
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/tickets/{id}/swap',
      ...guarded('operator', tag),
      summary:
        'Swap the terminal for a spare: merchant, tags and config move to the spare, the old terminal is retired',
      request: { params: idParam, ...body(swapSchema) },
      responses: { 200: json(ticketSchema), 404: errors[404], 422: errors[422] },
    }),
    async (c) =>
      c.json(await swap.swap(c.get('principal'), c.req.valid('param').id, c.req.valid('json').spareDeviceId), 200),
  );

  return app;
}
