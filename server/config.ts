// The only reader of process.env (DESIGN.md §3). Bad values stop start-up with
// one line naming the setting.
import { join } from 'node:path';
import cron from 'node-cron';
import { z } from 'zod';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const port = z.coerce.number().int().min(0).max(65_535);
const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const envSchema = z.object({
  PORT: port.default(8080),
  MQTT_PORT: port.default(1883),
  HOST: z.string().min(1).default('0.0.0.0'),
  DATA_DIR: z.string().min(1).default('./data'),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
    .optional(),
  POSFLEET_ADMIN_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  PUBLIC_URL: z.string().url().optional(),
  LOG_LEVEL: z.enum(LEVELS).default('info'),
  LOG_FORMAT: z.enum(['json', 'pretty']).optional(),
  // https://no-color.org: present and not empty means no colour.
  NO_COLOR: z.string().optional(),
  HOOKS_ALLOW_PRIVATE: bool.default(false),
  MQTT_MAX_PACKET_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(268_435_455)
    .default(256 * 1024),
  HEARTBEAT_INTERVAL_S: z.coerce.number().int().min(5).max(86_400).default(60),
  COMMAND_TTL_S: z.coerce
    .number()
    .int()
    .min(10)
    .max(30 * 86_400)
    .default(24 * 3600),
  INSPECTION_CRON: z
    .string()
    .min(9)
    .max(100)
    .refine((v) => cron.validate(v), 'must be a cron expression such as "0 6 * * *"')
    .default('0 6 * * *'),
  HOOKS_TIMEOUT_MS: z.coerce.number().int().min(50).max(120_000).default(10_000),
  HOOKS_DISABLE_AFTER_HOURS: z.coerce
    .number()
    .min(0.01)
    .max(24 * 365)
    .default(5 * 24),
  HOOKS_SECRET_KEY: z
    .string()
    .refine((v) => hooksKeyBytes(v) !== null, 'must be 32 bytes, base64 or hex (openssl rand -base64 32)')
    .optional(),
  ARTIFACT_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1)
    .max(Number.MAX_SAFE_INTEGER)
    .default(512 * 1024 * 1024),
  URL_SIGNING_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  BACKUP_CRON: z
    .string()
    .max(100)
    .refine((v) => cron.validate(v), 'must be a cron expression such as "30 2 * * *"')
    .optional(),
  BACKUP_DIR: z.string().min(1).optional(),
  BACKUP_KEEP: z.coerce.number().int().min(1).max(10_000).default(7),
});

export interface Config {
  port: number;
  mqttPort: number;
  host: string;
  dataDir: string;
  databaseUrl: string | undefined;
  adminToken: string | undefined;
  publicUrl: string;
  /** False when PUBLIC_URL was not given: the URL then follows the port actually bound. */
  publicUrlSet: boolean;
  logLevel: (typeof LEVELS)[number];
  /** Unset: readable lines when stdout is a terminal, JSON lines otherwise (main.ts decides). */
  logFormat: 'json' | 'pretty' | undefined;
  /** NO_COLOR was given: readable lines stay without colour. */
  noColor: boolean;
  hooksAllowPrivate: boolean;
  mqttMaxPacketBytes: number;
  heartbeatIntervalS: number;
  commandTtlS: number;
  /** When the periodic fleet inspection runs (node-cron expression). */
  inspectionCron: string;
  /** Webhook request timeout. */
  hooksTimeoutMs: number;
  /** A webhook endpoint failing for this long is disabled. */
  hooksDisableAfterMs: number;
  /** AES-256-GCM key sealing webhook secrets; unset: DATA_DIR/hooks.key (created on first use). */
  hooksSecretKey: string | undefined;
  /** Largest artifact payload accepted on upload (bytes). */
  artifactMaxBytes: number;
  /** HMAC key for signed download URLs; unset: DATA_DIR/url-signing.key (created on first start). */
  urlSigningSecret: string | undefined;
  /** When scheduled backups run (node-cron); unset: none. */
  backupCron: string | undefined;
  /** Where scheduled backups are written (default DATA_DIR/backups). */
  backupDir: string;
  /** Scheduled backups kept; older ones are removed after each new one. */
  backupKeep: number;
}

export class ConfigError extends Error {}

// Refusals name the setting; they never print a secret's value.
const SECRET_SETTINGS = new Set(['POSFLEET_ADMIN_TOKEN', 'HOOKS_SECRET_KEY', 'URL_SIGNING_SECRET']);

function shown(name: string, value: string | undefined): string {
  if (value === undefined) return '(unset)';
  if (SECRET_SETTINGS.has(name)) return '(hidden)';
  if (name === 'DATABASE_URL') return JSON.stringify(value.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@'));
  return JSON.stringify(value);
}

/** The 32 key bytes of a HOOKS_SECRET_KEY value (base64 or hex), or null. */
export function hooksKeyBytes(value: string): Buffer | null {
  const v = value.trim();
  const bytes = /^[0-9a-fA-F]{64}$/.test(v) ? Buffer.from(v, 'hex') : Buffer.from(v, 'base64');
  return bytes.length === 32 ? bytes : null;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Readonly<Config> {
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const name = String(issue.path[0]);
    throw new ConfigError(`invalid setting ${name}=${shown(name, env[name])}: ${issue.message}`);
  }
  const e = parsed.data;
  return Object.freeze({
    port: e.PORT,
    mqttPort: e.MQTT_PORT,
    host: e.HOST,
    dataDir: e.DATA_DIR,
    databaseUrl: e.DATABASE_URL,
    adminToken: e.POSFLEET_ADMIN_TOKEN,
    publicUrl: (e.PUBLIC_URL ?? `http://localhost:${e.PORT}`).replace(/\/$/, ''),
    publicUrlSet: e.PUBLIC_URL !== undefined,
    logLevel: e.LOG_LEVEL,
    logFormat: e.LOG_FORMAT,
    noColor: e.NO_COLOR !== undefined,
    hooksAllowPrivate: e.HOOKS_ALLOW_PRIVATE,
    mqttMaxPacketBytes: e.MQTT_MAX_PACKET_BYTES,
    heartbeatIntervalS: e.HEARTBEAT_INTERVAL_S,
    commandTtlS: e.COMMAND_TTL_S,
    inspectionCron: e.INSPECTION_CRON,
    hooksTimeoutMs: e.HOOKS_TIMEOUT_MS,
    hooksDisableAfterMs: Math.round(e.HOOKS_DISABLE_AFTER_HOURS * 3_600_000),
    hooksSecretKey: e.HOOKS_SECRET_KEY,
    artifactMaxBytes: e.ARTIFACT_MAX_BYTES,
    urlSigningSecret: e.URL_SIGNING_SECRET,
    backupCron: e.BACKUP_CRON,
    backupDir: e.BACKUP_DIR ?? join(e.DATA_DIR, 'backups'),
    backupKeep: e.BACKUP_KEEP,
  });
}

/** Settings for tests: ephemeral ports, loopback, quiet. */
export function testConfig(overrides: Partial<Config> = {}): Readonly<Config> {
  return Object.freeze({
    ...loadConfig({ PORT: '0', MQTT_PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent', HOOKS_ALLOW_PRIVATE: 'true' }),
    ...overrides,
  });
}
