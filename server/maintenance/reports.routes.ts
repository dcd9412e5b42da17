// HTTP: fleet report, the latest inspection report, an inspection run now.
import { createRoute } from '@hono/zod-openapi';
import { errors, guarded, json, router, z } from '../http/openapi.ts';
import { VERDICTS } from './inspection.checks.ts';
import type { Inspection } from './inspection.service.ts';
import type { Reports } from './reports.service.ts';

export function reportRoutes(deps: { reports: Reports; inspection: Inspection }) {
  const app = router();
  app.openapi(
    createRoute({
      method: 'get',
      path: '/reports/fleet',
      ...guarded('viewer', 'maintenance'),
      summary: 'Terminals by presence, health, model, firmware and merchant; tickets; maintenance due',
      responses: { 200: json(z.record(z.string(), z.unknown())) },
    }),
    async (c) => c.json(await deps.reports.fleet(), 200),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/reports/inspections/latest',
      ...guarded('viewer', 'maintenance'),
      summary: 'The latest periodic inspection: verdict counts and per-terminal checks',
      request: {
        query: z.object({
          verdict: z.enum(VERDICTS).optional(),
          limit: z.coerce.number().int().min(1).max(10_000).default(1000),
        }),
      },
      responses: { 200: json(z.record(z.string(), z.unknown())), 404: errors[404] },
    }),
    async (c) => c.json(await deps.inspection.latest(c.req.valid('query')), 200),
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/reports/inspections',
      ...guarded('operator', 'maintenance'),
      summary: 'Run the fleet inspection now (as INSPECTION_CRON does); answers its summary',
      responses: { 201: json(z.record(z.string(), z.unknown())) },
    }),
    async (c) => c.json(await deps.inspection.run(), 201),
  );
  return app;
}
