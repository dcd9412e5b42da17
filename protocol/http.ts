// HTTP shapes that terminals and the simulator rely on (DESIGN.md §5): enrolment
// and the few operator calls agent-sim makes with an admin token.
import { z } from 'zod';
import { DEVICE_ID_PATTERN } from './topics.ts';
import { semverString } from './messages.ts';

export const API_BASE = '/api/v1';

export const serialString = z.string().regex(DEVICE_ID_PATTERN, 'must be 3-64 characters of A-Z a-z 0-9 . _ -');
export const modelString = z.string().regex(/^[A-Za-z0-9._-]{1,32}$/, 'must be 1-32 characters of A-Z a-z 0-9 . _ -');

export const enrollRequestSchema = z.object({
  serial: serialString,
  model: modelString,
  firmware: semverString,
  apps: z.record(z.string().min(1).max(64), semverString).optional(),
});
export type EnrollRequest = z.infer<typeof enrollRequestSchema>;

export const mqttCredentialsSchema = z.object({
  url: z.string(),
  username: z.string(),
  password: z.string(),
  clientId: z.string(),
});
export type MqttCredentials = z.infer<typeof mqttCredentialsSchema>;

export const enrollResponseSchema = z.object({
  deviceId: z.string(),
  status: z.string(),
  mqtt: mqttCredentialsSchema,
  heartbeatIntervalS: z.number().int(),
});
export type EnrollResponse = z.infer<typeof enrollResponseSchema>;

export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof WEEKDAYS)[number];
const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be HH:MM (24 h)');

/** A weekly opening span in the merchant's local time; `close` < `open` runs past midnight. */
export const tradingSpanSchema = z.object({
  days: z.array(z.enum(WEEKDAYS)).min(1),
  open: hhmm,
  close: hhmm,
});
export const tradingHoursSchema = z.array(tradingSpanSchema).max(21);
export type TradingHours = z.infer<typeof tradingHoursSchema>;

export const createMerchantSchema = z.object({
  name: z.string().min(1).max(200),
  timezone: z.string().min(1).max(64),
  tradingHours: tradingHoursSchema.optional(),
  externalRef: z.string().max(128).optional(),
});
export type CreateMerchant = z.infer<typeof createMerchantSchema>;

export const createEnrollmentTokenSchema = z.object({
  merchantId: z.string().optional(),
  tags: z.array(z.string().min(1).max(64)).max(32).optional(),
  maxUses: z.number().int().min(1).max(1_000_000).optional(),
  /** Lifetime; defaults to 7 days. */
  ttlMinutes: z.number().int().min(1).max(525_600).optional(),
  requireApproval: z.boolean().optional(),
  note: z.string().max(500).optional(),
});
export type CreateEnrollmentToken = z.infer<typeof createEnrollmentTokenSchema>;
