import { createRoute } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { bearerToken } from '../http/auth.ts';
import { body, errors, guarded, idParam, json, listQuery, page, router, z } from '../http/openapi.ts';
import { DomainError } from '../lib/errors.ts';
import {
  createEnrollmentTokenSchema,
  credentialsSchema,
  enrollRequestSchema,
  enrollmentTokenSchema,
} from './devices.schemas.ts';
import type { Enrollment } from './enrollment.service.ts';

export function enrollmentRoutes(deps: { enrollment: Enrollment }) {
  const app = router();
  const tag = 'enrolment';

  app.openapi(
    createRoute({
      method: 'post',
      path: '/enrollment-tokens',
      ...guarded('operator', tag),
      summary: 'Issue an enrolment token (shown once)',
      request: body(createEnrollmentTokenSchema),
      responses: { 201: json(enrollmentTokenSchema.extend({ token: z.string() })), 400: errors[400], 422: errors[422] },
    }),
    async (c) => c.json(await deps.enrollment.createToken(c.get('principal'), c.req.valid('json')), 201),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/enrollment-tokens',
      ...guarded('operator', tag),
      summary: 'List enrolment tokens',
      request: { query: listQuery },
      responses: { 200: json(page(enrollmentTokenSchema)) },
    }),
    async (c) => c.json(await deps.enrollment.listTokens(c.req.valid('query')), 200),
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/enrollment-tokens/{id}',
      ...guarded('operator', tag),
      summary: 'Revoke an enrolment token',
      request: { params: idParam },
      responses: { 204: { description: 'revoked' }, 404: errors[404] },
    }),
    async (c) => {
      await deps.enrollment.revokeToken(c.get('principal'), c.req.valid('param').id);
      return c.body(null, 204);
    },
  );

  // Route middleware runs before body validation: a caller without a token
  // hears 401 first, not a 400 about a body it may not send at all.
  const requireToken: MiddlewareHandler = async (c, next) => {
    if (!bearerToken(c.req.header('authorization'))) {
      throw new DomainError(
        'unauthorized',
        'invalid_enrollment_token',
        'send the enrolment token as Authorization: Bearer <token>',
      );
    }
    await next();
  };

  app.openapi(
    createRoute({
      method: 'post',
      path: '/enroll',
      tags: [tag],
      security: [{ bearerAuth: [] }],
      middleware: [requireToken],
      summary: 'A terminal trades an enrolment token (Bearer) for its own MQTT credentials',
      request: body(enrollRequestSchema),
      responses: {
        201: json(credentialsSchema.extend({ status: z.string() })),
        400: errors[400],
        401: errors[401],
        409: errors[409],
      },
    }),
    async (c) =>
      c.json(await deps.enrollment.enroll(bearerToken(c.req.header('authorization'))!, c.req.valid('json')), 201),
  );
  return app;
}
