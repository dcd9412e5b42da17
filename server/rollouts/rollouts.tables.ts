import type { Generated, Selectable } from 'kysely';
import type { z } from 'zod';
import type { Json, Timestamp } from '../db/schema.ts';
import type { cohortFilterSchema } from './rollouts.schemas.ts';

/** The filter is stored as it was validated by `cohortFilterSchema`. */
export type CohortFilter = z.infer<typeof cohortFilterSchema>;

export interface CohortsTable {
  id: string;
  name: string;
  filter: Json<CohortFilter> | null;
  device_ids: Json<string[]> | null;
  created_at: Timestamp;
  created_by: string | null;
}

export interface RolloutsTable {
  id: string;
  name: string;
  artifact_id: string;
  cohort_id: string;
  component: string;
  version: string;
  state: string;
  spec: Json<Record<string, unknown>>;
  seed: string;
  current_wave: Generated<number>;
  reason: string | null;
  rollback_of: string | null;
  created_at: Timestamp;
  created_by: string | null;
  started_at: Timestamp | null;
  finished_at: Timestamp | null;
  updated_at: Timestamp;
}

export interface RolloutDevicesTable {
  rollout_id: string;
  device_id: string;
  component: string;
  wave: number;
  state: string;
  from_version: string | null;
  job_id: string | null;
  command_id: string | null;
  sends: Generated<number>;
  failures: Generated<number>;
  next_attempt_at: Timestamp | null;
  sent_at: Timestamp | null;
  installed_at: Timestamp | null;
  install_boot_id: string | null;
  soak_until: Timestamp | null;
  boots_in_soak: Generated<number>;
  finished_at: Timestamp | null;
  last_error: Json<unknown> | null;
  updated_at: Timestamp;
}

export interface RolloutTables {
  cohorts: CohortsTable;
  rollouts: RolloutsTable;
  rollout_devices: RolloutDevicesTable;
}

export type CohortRow = Selectable<CohortsTable>;
export type RolloutRow = Selectable<RolloutsTable>;
export type RolloutDeviceRow = Selectable<RolloutDevicesTable>;
