// Artifact and signing-key queries (Kysely only; rules live in the services).
import semver from 'semver';
import type { Kysely } from 'kysely';
import type { Db } from '../db/index.ts';
import type { Database } from '../db/schema.ts';
import { decodeCursor, pageOf } from '../lib/cursor.ts';
import type { ArtifactRow } from './artifacts.tables.ts';

export interface ArtifactFilter {
  component?: string;
  /** semver range on the version, e.g. ">=2.0.0 <3.0.0". */
  version?: string;
  model?: string;
}

export function createArtifactsRepo(db: Db) {
  /** A page of artifacts, newest first. The version range is not SQL, so rows are filtered here in chunks. */
  async function list(f: ArtifactFilter, limit: number, cursor?: string) {
    let before = decodeCursor(cursor);
    const matched: ArtifactRow[] = [];
    const chunk = Math.max(limit + 1, f.version ? 500 : 0);
    for (;;) {
      let q = db.selectFrom('artifacts').selectAll().orderBy('id', 'desc').limit(chunk);
      if (f.component) q = q.where('component', '=', f.component);
      if (f.model) q = q.where('models', '@>', JSON.stringify([f.model]) as never);
      if (before) q = q.where('id', '<', before);
      const rows = await q.execute();
      for (const r of rows) {
        if (!f.version || semver.satisfies(r.version, f.version, { includePrerelease: true })) matched.push(r);
        if (matched.length > limit) break;
      }
      if (matched.length > limit || rows.length < chunk) break;
      before = rows[rows.length - 1].id;
    }
    return pageOf(matched, limit, (r) => r.id);
  }

  const get = (id: string, trx: Kysely<Database> = db) =>
    trx.selectFrom('artifacts').selectAll().where('id', '=', id).executeTakeFirst();

  const findVersion = (component: string, version: string) =>
    db
      .selectFrom('artifacts')
      .select('id')
      .where('component', '=', component)
      .where('version', '=', version)
      .executeTakeFirst();

  const getKey = (id: string) => db.selectFrom('signing_keys').selectAll().where('id', '=', id).executeTakeFirst();

  async function listKeys(limit: number, cursor?: string) {
    let q = db
      .selectFrom('signing_keys')
      .selectAll()
      .orderBy('id')
      .limit(limit + 1);
    const after = decodeCursor(cursor);
    if (after) q = q.where('id', '>', after);
    return pageOf(await q.execute(), limit, (r) => r.id);
  }

  return { list, get, findVersion, getKey, listKeys };
}

export type ArtifactsRepo = ReturnType<typeof createArtifactsRepo>;
