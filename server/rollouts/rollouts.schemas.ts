// Request and response shapes of cohorts and rollouts (DESIGN.md §5 names).
import semver from 'semver';
import { componentString } from '../../protocol/artifact.ts';
import { z } from '../http/openapi.ts';
import { parseCron } from './cron-window.ts';
import { DEVICE_STATES, ROLLOUT_STATES } from './states.ts';

const range = z
  .string()
  .min(1)
  .max(200)
  .refine((r) => semver.validRange(r) !== null, 'must be a semver range such as >=2.0.0 <3.0.0');

export const cohortFilterSchema = z
  .object({
    models: z.array(z.string().max(32)).max(50).optional(),
    merchantIds: z.array(z.string().max(100)).max(500).optional(),
    tags: z.array(z.string().max(64)).max(32).optional(),
    versions: z.record(componentString, range).optional(),
    statuses: z.array(z.string().max(32)).max(10).optional(),
    presence: z
      .array(z.enum(['online', 'late', 'offline', 'missing', 'unknown']))
      .max(5)
      .optional(),
    health: z
      .array(z.enum(['ok', 'info', 'warning', 'critical']))
      .max(4)
      .optional(),
  })
  .openapi('CohortFilter');

export const newCohortSchema = z
  .object({
    name: z.string().min(1).max(200),
    filter: cohortFilterSchema.optional(),
    deviceIds: z.array(z.string().max(100)).max(100_000).optional(),
  })
  .refine((c) => (c.filter === undefined) !== (c.deviceIds === undefined), {
    message: 'give either a filter or a static deviceIds list',
    path: ['filter'],
  })
  .openapi('NewCohort');

export const cohortSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    filter: cohortFilterSchema.nullable(),
    deviceIds: z.array(z.string()).nullable(),
    createdAt: z.string(),
  })
  .openapi('Cohort');

const cron = z
  .string()
  .max(100)
  .refine((c) => {
    try {
      parseCron(c);
      return true;
    } catch {
      return false;
    }
  }, 'must be a 5-field cron expression such as "0 2 * * *"');

export const windowSchema = z.object({
  cron,
  durationMinutes: z.number().int().min(1).max(1440),
  outsideTradingHours: z.boolean().default(false),
});

const percent = z.number().gt(0).max(100);
const share = z.number().min(0).max(1);

export const newRolloutSchema = z
  .object({
    name: z.string().min(1).max(200),
    artifactId: z.string().min(1).max(100),
    cohortId: z.string().min(1).max(100),
    waves: z
      .array(z.object({ percent }))
      .min(1)
      .max(20)
      .default([{ percent: 100 }])
      .refine(
        (w) => w.every((x, i) => i === 0 || x.percent > w[i - 1].percent),
        'wave percentages are cumulative and must increase',
      )
      .refine((w) => w[w.length - 1].percent === 100, 'the last wave must be 100 percent'),
    canaryDeviceIds: z.array(z.string().max(100)).max(1000).default([]),
    successThreshold: share.default(0.95),
    failureThreshold: share.default(0.2),
    minFinished: z.number().int().min(1).max(100_000).default(10),
    onFailure: z.enum(['pause', 'rollback']).default('pause'),
    soakMinutes: z.number().min(0).max(10_080).default(30),
    window: windowSchema.nullable().default(null),
    ratePerMinute: z.number().int().min(1).max(1_000_000).default(1000),
    maxInFlight: z.number().int().min(1).max(1_000_000).default(500),
    retries: z.number().int().min(0).max(20).default(2),
    timeoutMinutes: z.number().min(1).max(10_080).default(60),
    startAt: z.string().datetime().nullable().default(null),
    deadline: z.string().datetime().nullable().default(null),
    allowDowngrade: z.boolean().default(false),
    /** Start dispatching at once (true) or stay a draft until POST /start. */
    start: z.boolean().default(true),
  })
  .openapi('NewRollout');
export type RolloutSpec = z.infer<typeof newRolloutSchema>;

const counts = z.record(z.string(), z.number());

export const rolloutSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    state: z.enum(ROLLOUT_STATES),
    artifactId: z.string(),
    cohortId: z.string(),
    component: z.string(),
    version: z.string(),
    currentWave: z.number(),
    reason: z.string().nullable(),
    rollbackOf: z.string().nullable(),
    waves: z.array(z.object({ index: z.number(), percent: z.number(), state: z.string(), size: z.number(), counts })),
    counts,
    total: z.number(),
    spec: z.record(z.string(), z.unknown()),
    createdAt: z.string(),
    startedAt: z.string().nullable(),
    finishedAt: z.string().nullable(),
  })
  .openapi('Rollout');

export const rolloutDeviceSchema = z
  .object({
    deviceId: z.string(),
    wave: z.number(),
    state: z.enum(DEVICE_STATES),
    fromVersion: z.string().nullable(),
    jobId: z.string().nullable(),
    sends: z.number(),
    failures: z.number(),
    lastError: z.unknown(),
    nextAttemptAt: z.string().nullable(),
    soakUntil: z.string().nullable(),
    updatedAt: z.string(),
  })
  .openapi('RolloutDevice');
