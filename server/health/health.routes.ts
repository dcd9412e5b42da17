// HTTP: health rules, alerts and the device health view.
import { createRoute } from '@hono/zod-openapi';
import { body, errors, guarded, idParam, json, listQuery, page, router, z } from '../http/openapi.ts';
import type { Alerts } from './alerts.service.ts';
import type { DeviceHealth } from './device-health.service.ts';
import { alertQuery, alertSchema, newRuleSchema, ruleSchema } from './rules.schemas.ts';
import type { Rules } from './rules.service.ts';

export function healthRoutes(deps: { rules: Rules; alerts: Alerts; deviceHealth: DeviceHealth }) {
  const { rules, alerts, deviceHealth } = deps;
  const app = router();

  app.openapi(
    createRoute({
      method: 'get',
      path: '/health-rules',
      ...guarded('viewer', 'health'),
      summary: 'List health rules (defaults and custom)',
      responses: { 200: json(page(ruleSchema)) },
    }),
    async (c) => c.json(await rules.list(), 200),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/health-rules/{id}',
      ...guarded('viewer', 'health'),
      summary: 'Get a health rule',
      request: { params: idParam },
      responses: { 200: json(ruleSchema), 404: errors[404] },
    }),
    async (c) => c.json(await rules.get(c.req.valid('param').id), 200),
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/health-rules',
      ...guarded('operator', 'health'),
      summary: 'Create a health rule',
      request: body(newRuleSchema),
      responses: { 201: json(ruleSchema), 400: errors[400] },
    }),
    async (c) => c.json(await rules.create(c.get('principal'), c.req.valid('json')), 201),
  );

  app.openapi(
    createRoute({
      method: 'put',
      path: '/health-rules/{id}',
      ...guarded('operator', 'health'),
      summary: 'Replace a health rule',
      request: { params: idParam, ...body(newRuleSchema) },
      responses: { 200: json(ruleSchema), 400: errors[400], 404: errors[404] },
    }),
    async (c) => c.json(await rules.replace(c.get('principal'), c.req.valid('param').id, c.req.valid('json')), 200),
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/health-rules/{id}',
      ...guarded('operator', 'health'),
      summary: 'Delete a health rule; its open alerts are resolved',
      request: { params: idParam },
      responses: { 204: { description: 'deleted' }, 404: errors[404] },
    }),
    async (c) => {
      await rules.remove(c.get('principal'), c.req.valid('param').id, alerts.resolveForRule);
      return c.body(null, 204);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/alerts',
      ...guarded('viewer', 'health'),
      summary: 'List alerts, newest first',
      request: { query: listQuery.extend(alertQuery.shape) },
      responses: { 200: json(page(alertSchema)), 400: errors[400] },
    }),
    async (c) => c.json(await alerts.list(c.req.valid('query')), 200),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/alerts/{id}',
      ...guarded('viewer', 'health'),
      summary: 'Get an alert',
      request: { params: idParam },
      responses: { 200: json(alertSchema), 404: errors[404] },
    }),
    async (c) => c.json(await alerts.get(c.req.valid('param').id), 200),
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/alerts/{id}/ack',
      ...guarded('operator', 'health'),
      summary: 'Acknowledge an open alert',
      request: { params: idParam },
      responses: { 200: json(alertSchema), 404: errors[404], 422: errors[422] },
    }),
    async (c) => c.json(await alerts.ack(c.get('principal'), c.req.valid('param').id), 200),
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/alerts/{id}/resolve',
      ...guarded('operator', 'health'),
      summary: 'Resolve an alert by hand',
      request: { params: idParam },
      responses: { 200: json(alertSchema), 404: errors[404], 422: errors[422] },
    }),
    async (c) => c.json(await alerts.resolve(c.get('principal'), c.req.valid('param').id), 200),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/devices/{id}/health',
      ...guarded('viewer', 'health'),
      summary: 'Presence, health, latest vitals, reboots, open alerts and maintenance predictions of a device',
      request: { params: idParam },
      responses: { 200: json(z.record(z.string(), z.unknown())), 404: errors[404] },
    }),
    async (c) => c.json(await deviceHealth.get(c.req.valid('param').id), 200),
  );

  return app;
}
