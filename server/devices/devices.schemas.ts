// HTTP schemas of the devices module (zod, with OpenAPI names).
import { createEnrollmentTokenSchema, enrollRequestSchema, modelString, serialString } from '../../protocol/http.ts';
import { semverString } from '../../protocol/messages.ts';
import { z } from '../http/openapi.ts';
import { DEVICE_STATUSES } from './lifecycle.ts';

const tag = z.string().regex(/^[A-Za-z0-9:._-]{1,64}$/, 'tags are 1-64 characters of A-Z a-z 0-9 : . _ -');
const isoDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a date YYYY-MM-DD');

export const newDeviceSchema = z
  .object({
    serial: serialString,
    model: modelString,
    merchantId: z.string().nullable().optional(),
    tags: z.array(tag).max(32).optional(),
    timezone: z.string().max(64).nullable().optional(),
    warrantyUntil: isoDate.nullable().optional(),
    firmware: semverString.optional(),
    apps: z.record(z.string(), semverString).optional(),
  })
  .openapi('NewDevice');

export const devicePatchSchema = z
  .object({
    merchantId: z.string().nullable().optional(),
    tags: z.array(tag).max(32).optional(),
    timezone: z.string().max(64).nullable().optional(),
    warrantyUntil: isoDate.nullable().optional(),
    model: modelString.optional(),
    status: z.enum(DEVICE_STATUSES).optional(),
    heartbeatIntervalS: z.number().int().min(5).max(86_400).optional(),
    config: z.record(z.string(), z.unknown()).optional(),
  })
  .openapi('DevicePatch');

export const deviceSchema = z
  .object({
    id: z.string(),
    serial: z.string(),
    model: z.string(),
    merchantId: z.string().nullable(),
    tags: z.array(z.string()),
    timezone: z.string().nullable(),
    warrantyUntil: z.string().nullable(),
    status: z.string(),
    firmware: z.string().nullable(),
    apps: z.record(z.string(), z.string()),
    config: z.record(z.string(), z.unknown()),
    connected: z.boolean(),
    lastConnectedAt: z.string().nullable(),
    lastDisconnectedAt: z.string().nullable(),
    lastSeenAt: z.string().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
    approvedAt: z.string().nullable(),
    decommissionedAt: z.string().nullable(),
  })
  .openapi('Device');

export const credentialsSchema = z
  .object({
    deviceId: z.string(),
    mqtt: z.object({ url: z.string(), username: z.string(), password: z.string(), clientId: z.string() }),
    heartbeatIntervalS: z.number(),
  })
  .openapi('DeviceCredentials');

/** A query parameter holding a comma-separated list of allowed values. */
function csvOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z
    .string()
    .max(200)
    .optional()
    .transform((v) =>
      v
        ? v
            .split(',')
            .map((x) => x.trim())
            .filter(Boolean)
        : undefined,
    )
    .pipe(z.array(z.enum(values)).optional());
}

export const deviceQuery = z.object({
  status: z.enum(DEVICE_STATUSES).optional(),
  model: z.string().max(32).optional(),
  merchant: z.string().max(100).optional(),
  tag: z.string().max(64).optional(),
  serial: z.string().max(64).optional(),
  firmware: z.string().max(100).optional().openapi({ description: 'semver range, e.g. ">=2.0.0 <3.0.0"' }),
  presence: csvOf(['online', 'late', 'offline', 'missing', 'unknown'] as const).openapi({
    description: 'comma-separated presence states, e.g. "offline,missing" (unknown: never heard from)',
  }),
  health: csvOf(['ok', 'info', 'warning', 'critical'] as const).openapi({
    description: 'comma-separated health levels (worst active alert), e.g. "warning,critical"',
  }),
});

export const USER_COMMANDS = ['reboot', 'ping', 'diagnostics', 'fetch_logs', 'set_config'] as const;

export const newCommandSchema = z
  .object({
    type: z.enum(USER_COMMANDS),
    params: z.record(z.string(), z.unknown()).optional(),
    ttlSeconds: z
      .number()
      .int()
      .min(10)
      .max(30 * 86_400)
      .optional(),
  })
  .openapi('NewCommand');

export const commandSchema = z
  .object({
    id: z.string(),
    deviceId: z.string(),
    type: z.string(),
    params: z.record(z.string(), z.unknown()),
    state: z.string(),
    createdAt: z.string(),
    createdBy: z.string().nullable(),
    expiresAt: z.string(),
    sentAt: z.string().nullable(),
    sendCount: z.number(),
    repliedAt: z.string().nullable(),
    result: z.unknown(),
    error: z.unknown(),
  })
  .openapi('Command');

export const enrollmentTokenSchema = z
  .object({
    id: z.string(),
    merchantId: z.string().nullable(),
    tags: z.array(z.string()),
    maxUses: z.number().nullable(),
    uses: z.number(),
    requireApproval: z.boolean(),
    note: z.string().nullable(),
    expiresAt: z.string(),
    createdAt: z.string(),
    revokedAt: z.string().nullable(),
  })
  .openapi('EnrollmentToken');

export { createEnrollmentTokenSchema, enrollRequestSchema };
