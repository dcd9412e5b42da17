import { createRoute } from '@hono/zod-openapi';
import { body, errors, guarded, idParam, json, listQuery, page, router, z } from '../http/openapi.ts';
import { isValidTimezone } from './timezones.ts';
import { unprocessable } from '../lib/errors.ts';
import {
  commandSchema,
  credentialsSchema,
  deviceQuery,
  devicePatchSchema,
  deviceSchema,
  newCommandSchema,
  newDeviceSchema,
} from './devices.schemas.ts';
import type { Devices } from './devices.service.ts';
import type { Commands } from './commands.service.ts';

export function deviceRoutes(deps: { devices: Devices; commands: Commands }) {
  const { devices, commands } = deps;
  const app = router();
  const tag = 'devices';

  app.openapi(
    createRoute({
      method: 'post',
      path: '/devices',
      ...guarded('operator', tag),
      summary: 'Pre-register a device (credentials are returned once)',
      request: body(newDeviceSchema),
      responses: {
        201: json(z.object({ device: deviceSchema, credentials: credentialsSchema })),
        400: errors[400],
        409: errors[409],
        422: errors[422],
      },
    }),
    async (c) => c.json(await devices.preRegister(c.get('principal'), c.req.valid('json')), 201),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/devices',
      ...guarded('viewer', tag),
      summary: 'List devices',
      request: { query: listQuery.extend(deviceQuery.shape) },
      responses: { 200: json(page(deviceSchema)), 400: errors[400] },
    }),
    async (c) => {
      const { limit, cursor, merchant, ...rest } = c.req.valid('query');
      return c.json(await devices.list({ ...rest, merchantId: merchant }, limit, cursor), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/devices/{id}',
      ...guarded('viewer', tag),
      summary: 'Get a device',
      request: { params: idParam },
      responses: { 200: json(deviceSchema), 404: errors[404] },
    }),
    async (c) => c.json(await devices.get(c.req.valid('param').id), 200),
  );

  app.openapi(
    createRoute({
      method: 'patch',
      path: '/devices/{id}',
      ...guarded('operator', tag),
      summary: 'Change a device (merchant, tags, status, config…)',
      request: { params: idParam, ...body(devicePatchSchema) },
      responses: { 200: json(deviceSchema), 400: errors[400], 404: errors[404], 409: errors[409], 422: errors[422] },
    }),
    async (c) => {
      const patch = c.req.valid('json');
      if (patch.timezone && !isValidTimezone(patch.timezone))
        throw unprocessable('invalid_timezone', `timezone '${patch.timezone}' is not an IANA timezone`);
      return c.json(await devices.update(c.get('principal'), c.req.valid('param').id, patch), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/devices/{id}/approve',
      ...guarded('operator', tag),
      summary: 'Approve a pending device',
      request: { params: idParam },
      responses: { 200: json(deviceSchema), 404: errors[404], 422: errors[422] },
    }),
    async (c) => c.json(await devices.update(c.get('principal'), c.req.valid('param').id, { status: 'active' }), 200),
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/devices/{id}',
      ...guarded('operator', tag),
      summary: 'Decommission a device: credentials revoked, session cut',
      request: { params: idParam },
      responses: { 200: json(deviceSchema), 404: errors[404], 409: errors[409] },
    }),
    async (c) => c.json(await devices.decommission(c.get('principal'), c.req.valid('param').id), 200),
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/devices/{id}/credentials',
      ...guarded('operator', tag),
      summary: 'Rotate the device token (shown once)',
      request: { params: idParam },
      responses: { 200: json(credentialsSchema), 404: errors[404], 409: errors[409] },
    }),
    async (c) => c.json(await devices.rotateCredentials(c.get('principal'), c.req.valid('param').id), 200),
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/devices/{id}/commands',
      ...guarded('operator', tag),
      summary: 'Send a command (stored, then published)',
      request: { params: idParam, ...body(newCommandSchema) },
      responses: { 202: json(commandSchema), 400: errors[400], 404: errors[404], 409: errors[409] },
    }),
    async (c) => c.json(await commands.send(c.get('principal'), c.req.valid('param').id, c.req.valid('json')), 202),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/devices/{id}/commands',
      ...guarded('viewer', tag),
      summary: "List a device's commands, newest first",
      request: { params: idParam, query: listQuery.extend({ state: z.string().max(32).optional() }) },
      responses: { 200: json(page(commandSchema)), 404: errors[404] },
    }),
    async (c) => c.json(await commands.list(c.req.valid('param').id, c.req.valid('query')), 200),
  );

  return app;
}
