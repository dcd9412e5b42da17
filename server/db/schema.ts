// Table types for Kysely. Rows are read as `Selectable<T>`, written as
// `Insertable<T>` / `Updateable<T>`. jsonb columns are written as JSON text.
import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';
import type { HooksTables } from '../hooks/hooks.tables.ts';
import type { TelemetryTables } from '../telemetry/telemetry.tables.ts';
import type { HealthTables } from '../health/health.tables.ts';
import type { MaintenanceTables } from '../maintenance/maintenance.tables.ts';
import type { ArtifactTables } from '../artifacts/artifacts.tables.ts';
import type { RolloutTables } from '../rollouts/rollouts.tables.ts';

export type Timestamp = ColumnType<Date, Date | string, Date | string>;
/** jsonb: read as T, written as JSON text (see `json()` in db/index.ts). */
export type Json<T> = ColumnType<T, string, string>;

export interface ApiKeysTable {
  id: string;
  name: string;
  role: string;
  token_hash: string;
  created_at: Generated<Date>;
  created_by: string | null;
  last_used_at: Timestamp | null;
  revoked_at: Timestamp | null;
}

export interface AuditLogTable {
  id: Generated<string>;
  at: Timestamp;
  actor_key_id: string | null;
  actor_name: string | null;
  action: string;
  target_type: string;
  target_id: string | null;
  details: Json<unknown> | null;
}

export interface MerchantsTable {
  id: string;
  name: string;
  timezone: string;
  trading_hours: Json<unknown[]>;
  external_ref: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface DevicesTable {
  id: string;
  serial: string;
  model: string;
  merchant_id: string | null;
  tags: Json<string[]>;
  timezone: string | null;
  warranty_until: ColumnType<string | null, string | null, string | null>;
  status: string;
  token_hash: string | null;
  credentials_rotated_at: Timestamp | null;
  firmware: string | null;
  apps: Json<Record<string, string>>;
  config: Json<Record<string, unknown>>;
  config_revision: Generated<number>;
  enrollment_token_id: string | null;
  connected: Generated<boolean>;
  last_connected_at: Timestamp | null;
  last_disconnected_at: Timestamp | null;
  last_will_at: Timestamp | null;
  created_at: Timestamp;
  updated_at: Timestamp;
  approved_at: Timestamp | null;
  decommissioned_at: Timestamp | null;
}

export interface EnrollmentTokensTable {
  id: string;
  token_hash: string;
  merchant_id: string | null;
  tags: Json<string[]>;
  max_uses: number | null;
  uses: Generated<number>;
  require_approval: boolean;
  note: string | null;
  expires_at: Timestamp;
  created_at: Timestamp;
  created_by: string | null;
  revoked_at: Timestamp | null;
}

export interface CommandsTable {
  id: string;
  device_id: string;
  type: string;
  params: Json<Record<string, unknown>>;
  state: string;
  created_at: Timestamp;
  created_by: string | null;
  expires_at: Timestamp;
  sent_at: Timestamp | null;
  send_count: Generated<number>;
  replied_at: Timestamp | null;
  result: Json<unknown> | null;
  error: Json<unknown> | null;
}

export interface OutboxEventsTable {
  seq: Generated<number>;
  id: string;
  type: string;
  occurred_at: Timestamp;
  subject_type: string | null;
  subject_id: string | null;
  data: Json<Record<string, unknown>>;
  created_at: Generated<Date>;
  /** Set once the hooks fan-out has turned the event into deliveries. */
  dispatched_at: Timestamp | null;
}

export interface CoreTables {
  outbox_events: OutboxEventsTable;
  api_keys: ApiKeysTable;
  audit_log: AuditLogTable;
  merchants: MerchantsTable;
  devices: DevicesTable;
  enrollment_tokens: EnrollmentTokensTable;
  commands: CommandsTable;
}

/**
 * All tables. Each module declares its own tables in `<module>/<module>.tables.ts`
 * and is listed here.
 */
export interface Database
  extends CoreTables,
    ArtifactTables,
    TelemetryTables,
    HealthTables,
    MaintenanceTables,
    HooksTables,
    RolloutTables {}

export type ApiKey = Selectable<ApiKeysTable>;
export type Merchant = Selectable<MerchantsTable>;
export type Device = Selectable<DevicesTable>;
/** A device with when it was last heard (its newest heartbeat, from device_state). */
export type DeviceRow = Device & { last_seen_at: Date | null };
export type NewDevice = Insertable<DevicesTable>;
export type DeviceUpdate = Updateable<DevicesTable>;
export type EnrollmentToken = Selectable<EnrollmentTokensTable>;
export type CommandRow = Selectable<CommandsTable>;
export type AuditEntry = Selectable<AuditLogTable>;
