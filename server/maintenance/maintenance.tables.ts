// Tables of the maintenance module (migrations/2026-11-25T1420-maintenance.ts).
import type { ColumnType, Selectable } from 'kysely';
import type { Json, Timestamp } from '../db/schema.ts';

export interface TicketsTable {
  id: string;
  device_id: string;
  kind: string;
  part: string | null;
  state: string;
  severity: string;
  title: string;
  description: string | null;
  source: string;
  alert_id: string | null;
  merchant_id: string | null;
  model: string;
  billable: boolean;
  warranty_reason: string;
  damage: ColumnType<boolean, boolean | undefined, boolean>;
  damage_note: string | null;
  assignee: string | null;
  notes: string | null;
  sla_due_at: Timestamp;
  scheduled_for: Timestamp | null;
  opened_at: Timestamp;
  started_at: Timestamp | null;
  closed_at: Timestamp | null;
  resolution: string | null;
  replacement_device_id: string | null;
  created_by: string | null;
  updated_at: Timestamp;
}

export interface InspectionReportsTable {
  id: string;
  started_at: Timestamp;
  completed_at: Timestamp;
  summary: Json<Record<string, unknown>>;
}

export interface InspectionResultsTable {
  report_id: string;
  device_id: string;
  verdict: string;
  checks: Json<Record<string, unknown>>;
}

export interface MaintenanceTables {
  tickets: TicketsTable;
  inspection_reports: InspectionReportsTable;
  inspection_results: InspectionResultsTable;
}

export type TicketRow = Selectable<TicketsTable>;
