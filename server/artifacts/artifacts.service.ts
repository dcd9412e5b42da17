// Artifact rules: verified streaming upload, catalogue, deletion guarded by the
// rollouts module through the `isInUse` port.
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { PackageError, type PackageProblem } from '../../firmware/errors.ts';
import {
  checkHeaderTrust,
  createPayloadVerifier,
  readPackageHeader,
  type PackageHeader,
} from '../../firmware/package.ts';
import type { Audit } from '../access/audit.service.ts';
import { json, type Db } from '../db/index.ts';
import type { Database } from '../db/schema.ts';
import type { Principal } from '../http/types.ts';
import type { Clock } from '../lib/clock.ts';
import { badRequest, conflict, DomainError, notFound, unprocessable } from '../lib/errors.ts';
import { newId } from '../lib/ids.ts';
import type { Metrics } from '../lib/metrics.ts';
import type { ArtifactStore, PendingPut } from './artifact-store.ts';
import type { ArtifactFilter, ArtifactsRepo } from './artifacts.repo.ts';
import type { ArtifactRow } from './artifacts.tables.ts';

/**
 * Port for the rollouts module: true when a rollout still uses the artifact,
 * which makes DELETE answer 409 artifact_in_use. It runs inside the deleting
 * transaction (`trx`), so the rollouts module can lock its own rows against a
 * concurrent rollout creation. Until one is supplied nothing is in use.
 */
export type ArtifactInUseCheck = (artifactId: string, trx: Kysely<Database>) => Promise<boolean>;

export interface ArtifactsDeps {
  db: Db;
  clock: Clock;
  audit: Audit;
  log: Logger;
  metrics: Metrics;
  repo: ArtifactsRepo;
  store: ArtifactStore;
  maxBytes: number;
  /** Told after a delete commits (the download path forgets the row it may hold). */
  onDeleted?: (artifactId: string) => void;
}

export function artifactView(a: ArtifactRow) {
  const m = a.manifest as { requires?: Record<string, string> };
  return {
    id: a.id,
    component: a.component,
    version: a.version,
    models: a.models,
    requires: m.requires ?? {},
    sha256: a.sha256,
    size: a.size,
    keyId: a.key_id,
    notes: a.notes,
    expiresAt: a.expires_at?.toISOString() ?? null,
    createdBy: a.created_by,
    createdAt: a.created_at.toISOString(),
  };
}

/** The detail adds what a terminal needs to verify the release itself. */
export function artifactDetailView(a: ArtifactRow) {
  return { ...artifactView(a), manifest: a.manifest, signature: a.signature };
}

/** A package problem as the domain error the upload contract names (docs/artifacts.md). */
function refusal(problems: PackageProblem[]): DomainError {
  const [first] = problems;
  const details = { problems };
  const message = problems.map((p) => p.message).join('; ');
  switch (first.code) {
    case 'bad_magic':
    case 'header_too_large':
    case 'header_invalid':
    case 'manifest_invalid':
      return badRequest(first.code, message, details);
    case 'truncated':
      // A short header means the file is not a package; a short payload breaks the signed size.
      return first.field === 'size'
        ? unprocessable('truncated', message, details)
        : badRequest('truncated', message, details);
    default:
      return unprocessable(first.code, message, details);
  }
}

const isUniqueViolation = (err: unknown) => (err as { code?: string }).code === '23505';

export function createArtifacts(deps: ArtifactsDeps) {
  const { db, clock, audit, repo, store, metrics } = deps;
  let inUse: ArtifactInUseCheck = async () => false;

  async function require(id: string): Promise<ArtifactRow> {
    const a = await repo.get(id);
    if (!a) throw notFound('artifact', id);
    return a;
  }

  /** Everything that can be judged from the header, before one payload byte is stored. */
  async function judgeHeader(header: PackageHeader): Promise<void> {
    const m = header.manifest;
    if (m.requires[m.component] !== undefined) {
      throw refusal([
        {
          code: 'manifest_invalid',
          field: 'requires',
          message: `a release cannot require its own component ${m.component}`,
        },
      ]);
    }
    if (m.size > deps.maxBytes) {
      throw new DomainError(
        'too_large',
        'payload_too_large',
        `payload is ${m.size} bytes; this server accepts at most ${deps.maxBytes} (ARTIFACT_MAX_BYTES)`,
        { size: m.size, max: deps.maxBytes },
      );
    }
    const key = await repo.getKey(m.keyId);
    if (!key)
      throw unprocessable('unknown_key', `manifest is signed by key ${m.keyId}, which is not a trusted signing key`, {
        keyId: m.keyId,
      });
    const problems = checkHeaderTrust(header, key.public_key, clock.now());
    if (problems.length > 0) throw refusal(problems);
    const existing = await repo.findVersion(m.component, m.version);
    if (existing) throw conflict('artifact_exists', `${m.component} ${m.version} already exists`, { id: existing.id });
  }

  async function readHeader(body: Readable | WebReadableStream<Uint8Array>) {
    try {
      return await readPackageHeader(body as Readable);
    } catch (err) {
      if (err instanceof PackageError) throw refusal(err.problems);
      throw err;
    }
  }

  /** Streams the payload to a temporary file through the size and sha256 check. */
  async function storePayload(id: string, header: Awaited<ReturnType<typeof readHeader>>): Promise<PendingPut> {
    const check = createPayloadVerifier(header.manifest);
    let pending: PendingPut;
    try {
      pending = await store.put(id, (sink) => pipeline(header.payload, check.stream, sink));
    } catch (err) {
      if (err instanceof PackageError) throw refusal(err.problems);
      throw err;
    }
    const problems = check.problems();
    if (problems.length > 0) {
      await pending.discard();
      throw refusal(problems);
    }
    return pending;
  }

  async function insert(actor: Principal, id: string, header: PackageHeader, pending: PendingPut): Promise<void> {
    const m = header.manifest;
    const now = clock.now();
    try {
      await db.transaction().execute(async (trx) => {
        await trx
          .insertInto('artifacts')
          .values({
            id,
            component: m.component,
            version: m.version,
            models: json(m.models),
            sha256: m.sha256,
            size: m.size,
            manifest: json(header.rawManifest),
            signature: header.signature,
            key_id: m.keyId,
            notes: m.notes ?? null,
            expires_at: m.expiresAt ?? null,
            storage_key: id,
            created_at: now,
            created_by: actor.keyId,
          })
          .execute();
        await audit.record(trx, actor, {
          action: 'artifact.uploaded',
          targetType: 'artifact',
          targetId: id,
          details: { component: m.component, version: m.version, size: m.size, keyId: m.keyId },
        });
        // Last step inside the transaction: if the rename fails, the row is rolled back.
        await pending.commit();
      });
    } catch (err) {
      await pending.discard();
      // The rename may have happened before a failed COMMIT; the row is gone, so must the file be.
      await store.delete(id).catch(() => undefined);
      if (isUniqueViolation(err)) throw conflict('artifact_exists', `${m.component} ${m.version} already exists`);
      throw err;
    }
  }

  /**
   * Reads the package from `body`: header first (judged before any payload byte
   * is stored), then the payload streamed to a temporary file while it is
   * counted and hashed; the file is moved into place and the row inserted only
   * when every check passed. A refused upload leaves no file and no row.
   */
  async function upload(actor: Principal, body: Readable | WebReadableStream<Uint8Array>) {
    try {
      const header = await readHeader(body);
      await judgeHeader(header);
      const id = newId('art', clock.nowMs());
      const pending = await storePayload(id, header);
      await insert(actor, id, header, pending);
      metrics.artifactUploads.inc({ result: 'stored' });
      deps.log.info(
        {
          artifactId: id,
          component: header.manifest.component,
          version: header.manifest.version,
          size: header.manifest.size,
        },
        'artifact stored',
      );
      return artifactView(await require(id));
    } catch (err) {
      metrics.artifactUploads.inc({ result: err instanceof DomainError ? err.code : 'error' });
      throw err;
    }
  }

  async function list(f: ArtifactFilter, limit: number, cursor?: string) {
    const { rows, nextCursor } = await repo.list(f, limit, cursor);
    return { items: rows.map(artifactView), nextCursor };
  }

  async function remove(actor: Principal, id: string): Promise<void> {
    const storageKey = await db.transaction().execute(async (trx) => {
      const a = await trx
        .selectFrom('artifacts')
        .select(['id', 'storage_key', 'component', 'version'])
        .where('id', '=', id)
        .forUpdate()
        .executeTakeFirst();
      if (!a) throw notFound('artifact', id);
      if (await inUse(id, trx))
        throw conflict('artifact_in_use', `artifact ${id} is used by a rollout; cancel or finish the rollout first`);
      await trx.deleteFrom('artifacts').where('id', '=', id).execute();
      await audit.record(trx, actor, {
        action: 'artifact.deleted',
        targetType: 'artifact',
        targetId: id,
        details: { component: a.component, version: a.version },
      });
      return a.storage_key;
    });
    deps.onDeleted?.(id);
    // After the commit: a failed delete leaves an orphan file, never a row without its payload.
    await store
      .delete(storageKey)
      .catch((err: unknown) => deps.log.error({ err, artifactId: id }, 'artifact file not deleted'));
  }

  return {
    upload,
    list,
    remove,
    require,
    get: async (id: string) => artifactDetailView(await require(id)),
    /** Supplies the rollouts module's check (see ArtifactInUseCheck). */
    setInUseCheck(check: ArtifactInUseCheck): void {
      inUse = check;
    },
  };
}

export type Artifacts = ReturnType<typeof createArtifacts>;
