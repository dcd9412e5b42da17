// Tables of the health module (migrations/2026-11-25T1410-health.ts).
import type { ColumnType, Selectable } from 'kysely';
import type { Json, Timestamp } from '../db/schema.ts';

export interface DevicePresenceTable {
  device_id: string;
  state: string;
  since: Timestamp;
}

export interface HealthRulesTable {
  id: string;
  name: string;
  description: string | null;
  metric: string;
  comparison: string;
  threshold: Json<unknown>;
  clear_threshold: Json<unknown> | null;
  conditions: Json<{ metric: string; comparison: string; value: unknown }[]>;
  for_count: number;
  for_seconds: number | null;
  severity: string;
  scope: Json<{ models?: string[]; merchantIds?: string[]; tags?: string[] }>;
  action: string;
  ticket: Json<{ kind: string; part?: string | null } | null> | null;
  remediation: string | null;
  enabled: boolean;
  builtin: boolean;
  created_at: Timestamp;
  updated_at: Timestamp;
  deleted_at: Timestamp | null;
}

export interface RuleStateTable {
  device_id: string;
  rule_id: string;
  state: Json<unknown>;
  updated_at: Timestamp;
}

export interface AlertsTable {
  id: string;
  device_id: string;
  rule_id: string;
  rule_name: string;
  severity: string;
  state: string;
  merchant_id: string | null;
  model: string;
  message: string;
  remediation: string | null;
  value: Json<unknown> | null;
  count: ColumnType<number, number | undefined, number>;
  flapping: ColumnType<boolean, boolean | undefined, boolean>;
  muted: ColumnType<boolean, boolean | undefined, boolean>;
  ticket_id: string | null;
  opened_at: Timestamp;
  last_seen_at: Timestamp;
  acknowledged_at: Timestamp | null;
  acknowledged_by: string | null;
  resolved_at: Timestamp | null;
  resolved_by: string | null;
  resolution: string | null;
}

export interface DevicePredictionsTable {
  device_id: string;
  kind: string;
  due_in_days: number | null;
  due_at: Timestamp | null;
  basis: Json<Record<string, unknown>>;
  computed_at: Timestamp;
}

export interface HealthTables {
  device_presence: DevicePresenceTable;
  health_rules: HealthRulesTable;
  rule_state: RuleStateTable;
  alerts: AlertsTable;
  device_predictions: DevicePredictionsTable;
}

export type HealthRuleRow = Selectable<HealthRulesTable>;
export type AlertRow = Selectable<AlertsTable>;
