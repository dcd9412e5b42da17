// The Hono root: request ids, access log, error envelope, health, metrics,
// OpenAPI and Swagger UI; module routers are mounted under /api/v1.
import { randomUUID } from 'node:crypto';
import { OpenAPIHono } from '@hono/zod-openapi';
import { swaggerUI } from '@hono/swagger-ui';
import type { Logger } from 'pino';
import type { Metrics } from '../lib/metrics.ts';
import { errorResponse, onError } from './errors.ts';
import type { Authenticator, HttpEnv } from './types.ts';

export interface HttpDeps {
  log: Logger;
  metrics: Metrics;
  authenticate: Authenticator;
  isReady: () => Promise<{ ready: boolean; checks: Record<string, boolean> }>;
  routers: OpenAPIHono<HttpEnv>[];
  /**
   * Awaited before an API request is handled (downloads aside): the device state
   * written behind the heartbeats catches up, so a client reads what the terminals
   * were acknowledged for.
   */
  beforeApi?: () => Promise<void>;
}

export const API_PREFIX = '/api/v1';

export function createHttpApp(deps: HttpDeps): OpenAPIHono<HttpEnv> {
  const app = new OpenAPIHono<HttpEnv>();
  app.use('*', async (c, next) => {
    const incoming = c.req.header('x-request-id');
    const requestId = incoming && /^[\w.-]{1,64}$/.test(incoming) ? incoming : randomUUID();
    const log = deps.log.child({ requestId });
    c.set('requestId', requestId);
    c.set('log', log);
    c.set('authenticate', deps.authenticate);
    const started = performance.now();
    await next();
    c.header('x-request-id', requestId);
    const ms = performance.now() - started;
    const route = c.req.routePath || 'unmatched';
    deps.metrics.httpDuration.observe({ method: c.req.method, route, status: String(c.res.status) }, ms / 1000);
    log.info(
      {
        method: c.req.method,
        path: c.req.path,
        route,
        status: c.res.status,
        ms: Math.round(ms * 10) / 10,
        key: c.get('principal')?.keyId,
      },
      'request',
    );
  });
  app.onError(onError);
  app.notFound((c) => errorResponse(c, 404, 'route_not_found', `no route for ${c.req.method} ${c.req.path}`));

  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', async (c) => {
    const { ready, checks } = await deps.isReady();
    return c.json({ status: ready ? 'ready' : 'not_ready', checks }, ready ? 200 : 503);
  });
  app.get('/metrics', async (c) => {
    c.header('content-type', deps.metrics.registry.contentType);
    return c.body(await deps.metrics.registry.metrics());
  });

  const beforeApi = deps.beforeApi;
  if (beforeApi) {
    app.use(`${API_PREFIX}/*`, async (c, next) => {
      if (!c.req.path.endsWith('/download')) await beforeApi();
      await next();
    });
  }
  for (const r of deps.routers) app.route(API_PREFIX, r);

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearerAuth', { type: 'http', scheme: 'bearer' });
  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: { title: 'posfleet API', version: '1', description: 'Fleet management and OTA updates for POS terminals' },
  });
  app.get('/docs', swaggerUI({ url: '/openapi.json' }));
  return app;
}
