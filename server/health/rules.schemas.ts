// HTTP schemas of health rules and alerts (zod, with OpenAPI names).
import { SEVERITIES } from '../../protocol/messages.ts';
import { z } from '../http/openapi.ts';
import { TICKET_KINDS, PARTS } from '../maintenance/tickets.states.ts';
import { COMPARISONS } from './rules.engine.ts';
import { ALERT_STATES } from './alerts.states.ts';

const metricPath = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*){0,4}$/, 'a metric path such as battery.pct');
const scalar = z.union([z.number(), z.string().max(64), z.boolean()]);
const thresholdValue = z.union([scalar, z.array(scalar).max(32)]);

export const newRuleSchema = z
  .object({
    name: z.string().min(1).max(120),
    description: z.string().max(1000).optional(),
    metric: metricPath,
    comparison: z.enum(COMPARISONS),
    threshold: thresholdValue,
    clearThreshold: thresholdValue
      .nullable()
      .optional()
      .openapi({ description: 'hysteresis: the alert clears only once past this value' }),
    conditions: z
      .array(z.object({ metric: metricPath, comparison: z.enum(COMPARISONS), value: thresholdValue }))
      .max(8)
      .optional(),
    forCount: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .optional()
      .openapi({ description: 'consecutive breaching observations before firing (default 1)' }),
    forSeconds: z
      .number()
      .int()
      .min(0)
      .max(30 * 86_400)
      .nullable()
      .optional()
      .openapi({ description: 'or: breach lasting this long' }),
    severity: z.enum(SEVERITIES),
    scope: z
      .object({
        models: z.array(z.string().max(32)).max(50).optional(),
        merchantIds: z.array(z.string().max(100)).max(500).optional(),
        tags: z.array(z.string().max(64)).max(50).optional(),
      })
      .optional(),
    action: z.enum(['alert', 'alert+ticket']),
    ticket: z
      .object({ kind: z.enum(TICKET_KINDS), part: z.enum(PARTS).nullable().optional() })
      .nullable()
      .optional(),
    remediation: z.string().max(1000).optional(),
    enabled: z.boolean().optional(),
  })
  .openapi('NewHealthRule');
export type NewRule = z.infer<typeof newRuleSchema>;

export const ruleSchema = newRuleSchema
  .extend({
    id: z.string(),
    builtin: z.boolean(),
    enabled: z.boolean(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('HealthRule');

export const alertSchema = z
  .object({
    id: z.string(),
    deviceId: z.string(),
    ruleId: z.string(),
    ruleName: z.string(),
    severity: z.string(),
    state: z.string(),
    merchantId: z.string().nullable(),
    model: z.string(),
    message: z.string(),
    remediation: z.string().nullable(),
    value: z.unknown(),
    count: z.number(),
    flapping: z.boolean(),
    muted: z.boolean(),
    ticketId: z.string().nullable(),
    openedAt: z.string(),
    lastSeenAt: z.string(),
    acknowledgedAt: z.string().nullable(),
    acknowledgedBy: z.string().nullable(),
    resolvedAt: z.string().nullable(),
    resolvedBy: z.string().nullable(),
    resolution: z.string().nullable(),
  })
  .openapi('Alert');

export const alertQuery = z.object({
  state: z
    .enum([...ALERT_STATES, 'active'])
    .optional()
    .openapi({ description: 'active = open or acknowledged' }),
  severity: z.enum(SEVERITIES).optional(),
  rule: z.string().max(100).optional(),
  merchant: z.string().max(100).optional(),
  model: z.string().max(32).optional(),
  device: z.string().max(100).optional(),
});
export type AlertQuery = z.infer<typeof alertQuery>;
