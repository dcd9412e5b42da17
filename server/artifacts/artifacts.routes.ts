import type { IncomingMessage } from 'node:http';
import { createRoute } from '@hono/zod-openapi';
import { body, errors, guarded, idParam, json, listQuery, page, router, z } from '../http/openapi.ts';
import type { Metrics } from '../lib/metrics.ts';
import type { ArtifactStore } from './artifact-store.ts';
import type { Artifacts } from './artifacts.service.ts';
import {
  artifactDetailSchema,
  artifactQuery,
  artifactSchema,
  downloadQuery,
  newSigningKeySchema,
  signingKeySchema,
} from './artifacts.schemas.ts';
import { serveDownload } from './download-response.ts';
import type { PayloadCache } from './payload-cache.ts';
import type { Downloads } from './downloads.ts';
import type { SigningKeys } from './signing-keys.service.ts';

const error413 = {
  description: 'payload over ARTIFACT_MAX_BYTES',
  content: { 'application/json': { schema: errors[400].content['application/json'].schema } },
};
const binary = (description: string) => ({
  description,
  content: { 'application/octet-stream': { schema: z.string().openapi({ format: 'binary' }) } },
});

export function signingKeyRoutes(deps: { signingKeys: SigningKeys }) {
  const app = router();
  const tag = 'artifacts';

  app.openapi(
    createRoute({
      method: 'post',
      path: '/signing-keys',
      ...guarded('admin', tag),
      summary: 'Trust a publisher key',
      request: body(newSigningKeySchema),
      responses: { 201: json(signingKeySchema), 400: errors[400], 409: errors[409] },
    }),
    async (c) => c.json(await deps.signingKeys.add(c.get('principal'), c.req.valid('json')), 201),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/signing-keys',
      ...guarded('admin', tag),
      summary: 'List trusted publisher keys',
      request: { query: listQuery },
      responses: { 200: json(page(signingKeySchema)) },
    }),
    async (c) => c.json(await deps.signingKeys.list(c.req.valid('query')), 200),
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/signing-keys/{id}',
      ...guarded('admin', tag),
      summary: 'Stop trusting a publisher key (stored artifacts stay)',
      request: { params: idParam },
      responses: { 204: { description: 'deleted' }, 404: errors[404] },
    }),
    async (c) => {
      await deps.signingKeys.remove(c.get('principal'), c.req.valid('param').id);
      return c.body(null, 204);
    },
  );

  return app;
}

export function artifactRoutes(deps: {
  artifacts: Artifacts;
  downloads: Downloads;
  store: ArtifactStore;
  metrics: Metrics;
  payloads?: PayloadCache;
}) {
  const { artifacts, downloads } = deps;
  const app = router();
  const tag = 'artifacts';

  app.openapi(
    createRoute({
      method: 'post',
      path: '/artifacts',
      ...guarded('operator', tag),
      summary: 'Upload a signed package (the file `posfleet firmware pack` writes) as the raw body',
      request: {
        body: {
          content: { 'application/octet-stream': { schema: z.string().openapi({ format: 'binary' }) } },
          required: true,
        },
      },
      responses: { 201: json(artifactSchema), 400: errors[400], 409: errors[409], 413: error413, 422: errors[422] },
    }),
    async (c) => {
      // On the Node server, read the request itself: no Web stream per chunk in between.
      const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
      const raw = incoming ?? c.req.raw.body;
      if (!raw)
        return c.json({ error: { code: 'truncated', message: 'the request has no body: send the package file' } }, 400);
      return c.json(await artifacts.upload(c.get('principal'), raw), 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/artifacts',
      ...guarded('viewer', tag),
      summary: 'List artifacts, newest first',
      request: { query: listQuery.extend(artifactQuery.shape) },
      responses: { 200: json(page(artifactSchema)), 400: errors[400] },
    }),
    async (c) => {
      const { limit, cursor, ...filter } = c.req.valid('query');
      return c.json(await artifacts.list(filter, limit, cursor), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/artifacts/{id}',
      ...guarded('viewer', tag),
      summary: 'Get an artifact with its signed manifest',
      request: { params: idParam },
      responses: { 200: json(artifactDetailSchema), 404: errors[404] },
    }),
    async (c) => c.json(await artifacts.get(c.req.valid('param').id), 200),
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/artifacts/{id}',
      ...guarded('operator', tag),
      summary: 'Delete an artifact no rollout uses',
      request: { params: idParam },
      responses: { 204: { description: 'deleted' }, 404: errors[404], 409: errors[409] },
    }),
    async (c) => {
      await artifacts.remove(c.get('principal'), c.req.valid('param').id);
      return c.body(null, 204);
    },
  );

  // GET also answers HEAD (Hono runs the GET handler and drops the body).
  app.openapi(
    createRoute({
      method: 'get',
      path: '/artifacts/{id}/download',
      tags: [tag],
      summary:
        'Download the payload: terminal credentials (Bearer <deviceId>:<token> or Basic) or a signed URL; Range, If-Range, ETag',
      request: { params: idParam, query: downloadQuery },
      responses: {
        200: binary('the whole payload'),
        206: binary('the requested range'),
        304: { description: 'If-None-Match matched' },
        401: errors[401],
        403: errors[403],
        404: errors[404],
        416: { description: 'range outside the payload (Content-Range: bytes */size)' },
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const { exp, sig, device } = c.req.valid('query');
      const { artifact } = await downloads.authorize(id, {
        authorization: c.req.header('authorization'),
        signed: { exp, sig, device },
      });
      return serveDownload(c, artifact, deps) as never;
    },
  );

  return app;
}
