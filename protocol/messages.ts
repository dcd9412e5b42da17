// Payload schemas of the MQTT contract (DESIGN.md §4). Server and agent-sim both
// parse with these, so the wire format is written down exactly once.
import { z } from 'zod';

export const PROTOCOL_VERSION = 1;

const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/;
export const semverString = z.string().regex(SEMVER, 'must be a semantic version such as 2.4.0');
const epochMs = z.number().int().nonnegative();
const count = z.number().int().nonnegative();
const pct = z.number().min(0).max(100);
const tempC = z.number().min(-60).max(150);

export const PRINTER_STATES = ['ok', 'paper_low', 'no_paper', 'jam', 'cover_open', 'overheat', 'fault'] as const;
export const NET_TYPES = ['wifi', 'lte', '3g', 'ethernet', 'bluetooth'] as const;

// Vitals keep unknown keys (`loose`): a newer agent may report more than we know.
export const batteryVitals = z.looseObject({
  pct: pct.optional(),
  charging: z.boolean().optional(),
  healthPct: pct.optional(),
  cycles: count.optional(),
  tempC: tempC.optional(),
});
export const printerVitals = z.looseObject({
  state: z.enum(PRINTER_STATES).optional(),
  headTempC: tempC.optional(),
  linesPrinted: count.optional(),
});
export const readerVitals = z.looseObject({
  swipeOk: count.optional(),
  swipeErr: count.optional(),
  chipOk: count.optional(),
  chipErr: count.optional(),
  tapOk: count.optional(),
  tapErr: count.optional(),
});
export const netVitals = z.looseObject({
  type: z.enum(NET_TYPES).optional(),
  signalDbm: z.number().min(-150).max(0).optional(),
  latencyMs: z.number().min(0).max(600_000).optional(),
});
export const sysVitals = z.looseObject({
  cpuPct: pct.optional(),
  memFreePct: pct.optional(),
  storageFreePct: pct.optional(),
  uptimeS: count.optional(),
  rebootReason: z.string().max(64).optional(),
});
export const securityVitals = z.looseObject({
  tamper: z.boolean().optional(),
  patchLevel: z
    .string()
    .regex(/^\d{4}-\d{2}-\d{2}$/, 'must be YYYY-MM-DD')
    .optional(),
});
export const txVitals = z.looseObject({ count: count.optional(), failed: count.optional(), queued: count.optional() });
export const geoVitals = z.looseObject({
  lat: z.number().min(-90).max(90),
  lon: z.number().min(-180).max(180),
});

export const heartbeatSchema = z.looseObject({
  v: z.literal(PROTOCOL_VERSION),
  seq: count,
  bootId: z.string().min(1).max(64),
  ts: epochMs,
  firmware: semverString,
  apps: z.record(z.string().min(1).max(64), semverString),
  battery: batteryVitals.optional(),
  printer: printerVitals.optional(),
  reader: readerVitals.optional(),
  net: netVitals.optional(),
  sys: sysVitals.optional(),
  security: securityVitals.optional(),
  tx: txVitals.optional(),
  geo: geoVitals.optional(),
});
export type Heartbeat = z.infer<typeof heartbeatSchema>;

export const SEVERITIES = ['info', 'warning', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

export const eventSchema = z.object({
  v: z.literal(PROTOCOL_VERSION),
  ts: epochMs,
  type: z.string().min(1).max(64),
  severity: z.enum(SEVERITIES).optional(),
  data: z.record(z.string(), z.unknown()).optional(),
});
export type DeviceEvent = z.infer<typeof eventSchema>;

export const OTA_STATES = [
  'accepted',
  'deferred',
  'downloading',
  'downloaded',
  'verifying',
  'installing',
  'rebooting',
  'succeeded',
  'failed',
  'rejected',
] as const;
export type OtaState = (typeof OTA_STATES)[number];

export const otaReportSchema = z.object({
  v: z.literal(PROTOCOL_VERSION),
  jobId: z.string().min(1).max(64),
  state: z.enum(OTA_STATES),
  progress: z.number().min(0).max(100).optional(),
  error: z.object({ code: z.string().min(1).max(64), message: z.string().max(1000) }).optional(),
});
export type OtaReport = z.infer<typeof otaReportSchema>;

export const REPLY_STATUSES = ['ok', 'error', 'rejected', 'busy'] as const;
export type ReplyStatus = (typeof REPLY_STATUSES)[number];

export const replySchema = z.object({
  v: z.literal(PROTOCOL_VERSION),
  commandId: z.string().min(1).max(64),
  status: z.enum(REPLY_STATUSES),
  result: z.unknown().optional(),
  error: z.union([z.string().max(1000), z.object({ code: z.string(), message: z.string() })]).optional(),
});
export type CommandReply = z.infer<typeof replySchema>;

export const presenceSchema = z.object({
  v: z.literal(PROTOCOL_VERSION),
  state: z.enum(['offline', 'online']),
});
export type PresenceMessage = z.infer<typeof presenceSchema>;

// Server → device.
export const COMMAND_TYPES = ['reboot', 'ping', 'diagnostics', 'fetch_logs', 'set_config', 'update'] as const;
export type CommandType = (typeof COMMAND_TYPES)[number];

export const updateParamsSchema = z.object({
  jobId: z.string().min(1),
  component: z.string().regex(/^(firmware|app:[A-Za-z0-9._-]{1,64})$/),
  version: semverString,
  url: z.string().url(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size: count,
  signature: z.string().min(1),
  manifest: z.unknown(),
  allowDowngrade: z.boolean().optional(),
});
export type UpdateParams = z.infer<typeof updateParamsSchema>;

export const commandSchema = z.object({
  v: z.literal(PROTOCOL_VERSION),
  id: z.string().min(1).max(64),
  type: z.enum(COMMAND_TYPES),
  params: z.record(z.string(), z.unknown()),
  expiresAt: epochMs,
});
export type Command = z.infer<typeof commandSchema>;

export const deviceConfigSchema = z.looseObject({
  v: z.literal(PROTOCOL_VERSION),
  revision: count,
  heartbeatIntervalS: z.number().int().min(5).max(86_400),
});
export type DeviceConfig = z.infer<typeof deviceConfigSchema>;

/** Uplink schemas by topic kind, for the router. */
export const uplinkSchemas = {
  heartbeat: heartbeatSchema,
  event: eventSchema,
  ota: otaReportSchema,
  reply: replySchema,
  presence: presenceSchema,
} as const;
