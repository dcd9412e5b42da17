import { createRoute } from '@hono/zod-openapi';
import { body, errors, guarded, idParam, json, listQuery, page, router, z } from '../http/openapi.ts';
import type { Cohorts } from './cohorts.service.ts';
import type { Engine } from './engine.ts';
import type { RollbackPlanner } from './rollback.ts';
import {
  cohortSchema,
  newCohortSchema,
  newRolloutSchema,
  rolloutDeviceSchema,
  rolloutSchema,
} from './rollouts.schemas.ts';
import type { Rollouts } from './rollouts.service.ts';
import { DEVICE_STATES, ROLLOUT_STATES } from './states.ts';
import { deviceSchema } from '../devices/devices.schemas.ts';

const ACTIONS = {
  start: { to: 'running', event: 'rollout.started' },
  pause: { to: 'paused', event: 'rollout.paused' },
  resume: { to: 'running', event: null },
  cancel: { to: 'cancelled', event: 'rollout.cancelled' },
} as const;

export function rolloutRoutes(deps: {
  rollouts: Rollouts;
  cohorts: Cohorts;
  engine: Engine;
  rollback: RollbackPlanner;
}) {
  const { rollouts, cohorts, engine } = deps;
  const app = router();

  app.openapi(
    createRoute({
      method: 'post',
      path: '/cohorts',
      ...guarded('operator', 'rollouts'),
      summary: 'Create a cohort (dynamic filter or static list)',
      request: body(newCohortSchema),
      responses: { 201: json(cohortSchema), 400: errors[400], 409: errors[409] },
    }),
    async (c) => c.json(await cohorts.create(c.get('principal'), c.req.valid('json')), 201),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/cohorts',
      ...guarded('viewer', 'rollouts'),
      summary: 'List cohorts',
      request: { query: listQuery },
      responses: { 200: json(page(cohortSchema)) },
    }),
    async (c) => c.json(await cohorts.list(c.req.valid('query')), 200),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/cohorts/{id}/devices',
      ...guarded('viewer', 'rollouts'),
      summary: 'Preview the devices a cohort holds now',
      request: { params: idParam, query: listQuery },
      responses: { 200: json(page(deviceSchema).extend({ total: z.number() })), 404: errors[404] },
    }),
    async (c) => c.json(await cohorts.preview(c.req.valid('param').id, c.req.valid('query')), 200),
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/rollouts/plan',
      ...guarded('operator', 'rollouts'),
      summary: 'Dry run: eligibility, waves, windows, estimate; changes nothing',
      request: body(newRolloutSchema),
      responses: { 200: json(z.record(z.string(), z.unknown())), 400: errors[400], 422: errors[422] },
    }),
    async (c) => c.json((await rollouts.plan(c.req.valid('json'))).result, 200),
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/rollouts',
      ...guarded('operator', 'rollouts'),
      summary: 'Create a rollout (started at once unless start=false or startAt is later)',
      request: body(newRolloutSchema),
      responses: { 201: json(rolloutSchema), 400: errors[400], 409: errors[409], 422: errors[422] },
    }),
    async (c) => {
      const created = await rollouts.create(c.get('principal'), c.req.valid('json'));
      engine.kick(0);
      return c.json(created, 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/rollouts',
      ...guarded('viewer', 'rollouts'),
      summary: 'List rollouts, newest first',
      request: { query: listQuery.extend({ state: z.enum(ROLLOUT_STATES).optional() }) },
      responses: { 200: json(page(rolloutSchema)) },
    }),
    async (c) => c.json(await rollouts.list(c.req.valid('query')), 200),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/rollouts/{id}',
      ...guarded('viewer', 'rollouts'),
      summary: 'A rollout with counts per wave and state',
      request: { params: idParam },
      responses: { 200: json(rolloutSchema), 404: errors[404] },
    }),
    async (c) => c.json(await rollouts.get(c.req.valid('param').id), 200),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/rollouts/{id}/devices',
      ...guarded('viewer', 'rollouts'),
      summary: "Each terminal's state and last error",
      request: {
        params: idParam,
        query: listQuery.extend({
          state: z.enum(DEVICE_STATES).optional(),
          wave: z.coerce.number().int().min(0).optional(),
        }),
      },
      responses: { 200: json(page(rolloutDeviceSchema)), 404: errors[404] },
    }),
    async (c) => c.json(await rollouts.devices(c.req.valid('param').id, c.req.valid('query')), 200),
  );

  for (const [action, t] of Object.entries(ACTIONS)) {
    app.openapi(
      createRoute({
        method: 'post',
        path: `/rollouts/{id}/${action}`,
        ...guarded('operator', 'rollouts'),
        summary: `${action[0].toUpperCase()}${action.slice(1)} a rollout`,
        request: { params: idParam },
        responses: { 200: json(rolloutSchema), 404: errors[404], 422: errors[422] },
      }),
      async (c) => {
        const id = c.req.valid('param').id;
        await rollouts.transition(
          c.get('principal'),
          id,
          t.to,
          action === 'resume' ? 'resumed' : null,
          t.event ?? undefined,
        );
        engine.kick(0);
        return c.json(await rollouts.get(id), 200);
      },
    );
  }

  app.openapi(
    createRoute({
      method: 'post',
      path: '/rollouts/{id}/rollback',
      ...guarded('operator', 'rollouts'),
      summary: "Roll back: new rollouts to each terminal's previous version",
      request: { params: idParam },
      responses: {
        201: json(z.object({ rollouts: z.array(rolloutSchema), missingVersions: z.array(z.string()) })),
        404: errors[404],
        422: errors[422],
      },
    }),
    async (c) => {
      const result = await deps.rollback.rollBack(c.get('principal'), c.req.valid('param').id);
      engine.kick(0);
      return c.json(result, 201);
    },
  );

  return app;
}
