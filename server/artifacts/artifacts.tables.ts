// Tables of the artifacts module (listed in Database, server/db/schema.ts).
import type { Selectable } from 'kysely';
import type { Json, Timestamp } from '../db/schema.ts';

/** A trusted publisher key; the id is the key id (keyIdOf) that manifests name. */
export interface SigningKeysTable {
  id: string;
  name: string;
  public_key: string;
  created_at: Timestamp;
  created_by: string | null;
}

export interface ArtifactsTable {
  id: string;
  component: string;
  version: string;
  models: Json<string[]>;
  sha256: string;
  size: number;
  /** The manifest exactly as signed (unknown fields included), so terminals can re-verify it. */
  manifest: Json<Record<string, unknown>>;
  signature: string;
  key_id: string;
  notes: string | null;
  expires_at: Timestamp | null;
  /** Where the payload lives in the ArtifactStore. */
  storage_key: string;
  created_at: Timestamp;
  created_by: string | null;
}

export interface ArtifactTables {
  signing_keys: SigningKeysTable;
  artifacts: ArtifactsTable;
}

export type SigningKeyRow = Selectable<SigningKeysTable>;
export type ArtifactRow = Selectable<ArtifactsTable>;
