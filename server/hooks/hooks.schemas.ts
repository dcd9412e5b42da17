// HTTP schemas of the hooks module (zod, with OpenAPI names).
import { z } from '../http/openapi.ts';
import { DELIVERY_STATES } from './delivery.states.ts';
import { HOOK_FORMATS } from './formats.ts';

const eventPattern = z
  .string()
  .regex(
    /^(\*|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*(\.\*)?)$/,
    'an event type such as alert.opened, a prefix such as alert.*, or *',
  );
const list = (item: z.ZodString) => z.array(item).max(100).optional();

export const hookFilterSchema = z
  .object({
    severity: list(z.string().min(1).max(32)),
    merchantIds: list(z.string().min(1).max(100)),
    models: list(z.string().min(1).max(32)),
    tags: list(z.string().min(1).max(64)),
  })
  .strict()
  .openapi('HookFilter');

export const newHookSchema = z
  .object({
    url: z.string().url().max(2_000),
    events: z.array(eventPattern).min(1).max(50),
    format: z.enum(HOOK_FORMATS).default('json'),
    filter: hookFilterSchema.optional(),
    config: z
      .object({ routingKey: z.string().min(1).max(200).optional() })
      .strict()
      .optional()
      .openapi({ description: 'format settings; pagerduty needs routingKey (the integration key)' }),
    description: z.string().max(500).optional(),
  })
  .openapi('NewHook');

export const hookPatchSchema = z
  .object({
    url: newHookSchema.shape.url.optional(),
    events: newHookSchema.shape.events.optional(),
    format: z.enum(HOOK_FORMATS).optional(),
    filter: hookFilterSchema.optional(),
    config: newHookSchema.shape.config,
    description: z.string().max(500).nullable().optional(),
  })
  .strict()
  .refine((p) => Object.keys(p).length > 0, 'name at least one field to change')
  .openapi('HookPatch');
export type HookPatch = z.infer<typeof hookPatchSchema>;

export const hookSchema = z
  .object({
    id: z.string(),
    url: z.string(),
    events: z.array(z.string()),
    format: z.string(),
    filter: hookFilterSchema,
    config: z.record(z.string(), z.unknown()),
    description: z.string().nullable(),
    state: z.enum(['active', 'disabled']),
    failingSince: z.string().nullable(),
    disabledAt: z.string().nullable(),
    disabledReason: z.string().nullable(),
    previousSecretValidUntil: z.string().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('Hook');

export const hookCreatedSchema = hookSchema
  .extend({
    secret: z.string().openapi({ description: 'whsec_…; shown only in this answer' }),
  })
  .openapi('HookCreated');

export const rotateSecretSchema = z
  .object({
    overlapSeconds: z
      .number()
      .int()
      .min(0)
      .max(7 * 86_400)
      .optional()
      .openapi({ description: 'the old secret keeps signing this long (default 86400)' }),
  })
  .openapi('RotateHookSecret');

export const rotatedSecretSchema = z
  .object({
    id: z.string(),
    secret: z.string(),
    previousSecretValidUntil: z.string().nullable(),
  })
  .openapi('RotatedHookSecret');

export const attemptSchema = z
  .object({
    attempt: z.number(),
    at: z.string(),
    status: z.number().nullable(),
    latencyMs: z.number(),
    error: z.string().nullable(),
    response: z.string().nullable(),
  })
  .openapi('HookAttempt');

export const deliverySchema = z
  .object({
    id: z.string().openapi({ description: 'the webhook-id header, the same on every attempt' }),
    hookId: z.string(),
    eventId: z.string().nullable(),
    eventType: z.string(),
    state: z.enum(DELIVERY_STATES),
    attempts: z.number(),
    nextAttemptAt: z.string().nullable(),
    lastStatus: z.number().nullable(),
    lastError: z.string().nullable(),
    lastLatencyMs: z.number().nullable(),
    createdAt: z.string(),
    deliveredAt: z.string().nullable(),
    requestBody: z.string(),
    attemptLog: z.array(attemptSchema),
  })
  .openapi('HookDelivery');

export const deliveryQuery = z.object({ state: z.enum(DELIVERY_STATES).optional() });

export type NewHook = z.infer<typeof newHookSchema>;
