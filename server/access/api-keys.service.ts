// Operator API keys: random secrets stored as SHA-256, checked in constant time.
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Db } from '../db/index.ts';
import type { Principal, Role } from '../http/types.ts';
import type { Clock } from '../lib/clock.ts';
import { newId } from '../lib/ids.ts';
import { hashSecret, newSecret, secretMatches } from '../lib/secrets.ts';
import { notFound } from '../lib/errors.ts';
import { decodeCursor, pageOf } from '../lib/cursor.ts';
import type { Audit } from './audit.service.ts';

const ENV_ADMIN_KEY_ID = 'key_env_admin';
const TOUCH_EVERY_MS = 60_000;

export function createApiKeys(deps: { db: Db; clock: Clock; audit: Audit; log: Logger }) {
  const { db, clock, audit } = deps;
  const touched = new Map<string, number>();

  async function authenticate(token: string): Promise<Principal | null> {
    const hash = hashSecret(token);
    const row = await db
      .selectFrom('api_keys')
      .select(['id', 'name', 'role', 'token_hash'])
      .where('token_hash', '=', hash)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    if (!row || !secretMatches(token, row.token_hash)) return null;
    touch(row.id);
    return { keyId: row.id, name: row.name, role: row.role as Role };
  }

  // last_used_at is informative: written at most once a minute per key.
  function touch(id: string): void {
    const now = clock.nowMs();
    if (now - (touched.get(id) ?? 0) < TOUCH_EVERY_MS) return;
    touched.set(id, now);
    void db
      .updateTable('api_keys')
      .set({ last_used_at: clock.now() })
      .where('id', '=', id)
      .execute()
      .catch((err: unknown) => deps.log.warn({ err, keyId: id }, 'api key touch failed'));
  }

  async function create(actor: Principal | null, input: { name: string; role: Role }) {
    const id = newId('key', clock.nowMs());
    const token = newSecret('pfk');
    await db.transaction().execute(async (trx) => {
      await trx
        .insertInto('api_keys')
        .values({
          id,
          name: input.name,
          role: input.role,
          token_hash: hashSecret(token),
          created_by: actor?.keyId ?? null,
          created_at: clock.now(),
        })
        .execute();
      await audit.record(trx, actor, {
        action: 'api_key.created',
        targetType: 'api_key',
        targetId: id,
        details: { name: input.name, role: input.role },
      });
    });
    return { id, name: input.name, role: input.role, token };
  }

  async function list(q: { limit: number; cursor?: string }) {
    let query = db
      .selectFrom('api_keys')
      .select(['id', 'name', 'role', 'created_at', 'created_by', 'last_used_at', 'revoked_at'])
      .orderBy('id')
      .limit(q.limit + 1);
    const after = decodeCursor(q.cursor);
    if (after) query = query.where('id', '>', after);
    const { rows, nextCursor } = pageOf(await query.execute(), q.limit, (r) => r.id);
    const items = rows.map((r) => ({
      id: r.id,
      name: r.name,
      role: r.role,
      createdBy: r.created_by,
      createdAt: r.created_at.toISOString(),
      lastUsedAt: r.last_used_at?.toISOString() ?? null,
      revokedAt: r.revoked_at?.toISOString() ?? null,
    }));
    return { items, nextCursor };
  }

  async function revoke(actor: Principal, id: string): Promise<void> {
    await db.transaction().execute(async (trx) => {
      const res = await trx
        .updateTable('api_keys')
        .set({ revoked_at: clock.now() })
        .where('id', '=', id)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) === 0) throw notFound('api_key', id);
      await audit.record(trx, actor, { action: 'api_key.revoked', targetType: 'api_key', targetId: id });
    });
  }

  /**
   * DESIGN.md §3: POSFLEET_ADMIN_TOKEN defines an admin key; without it and
   * without any admin key, one is generated, printed once and saved 0600.
   */
  async function bootstrap(opts: {
    adminToken?: string;
    dataDir: string;
    /** A key was generated: the caller shows it once the start has succeeded. */
    announce: (generated: { file: string; token: string }) => void;
  }): Promise<void> {
    if (opts.adminToken) {
      const values = {
        name: 'admin (POSFLEET_ADMIN_TOKEN)',
        role: 'admin',
        token_hash: hashSecret(opts.adminToken),
        revoked_at: null,
        created_at: clock.now(),
        created_by: null,
      };
      await db
        .insertInto('api_keys')
        .values({ id: ENV_ADMIN_KEY_ID, ...values })
        .onConflict((oc) => oc.column('id').doUpdateSet({ token_hash: values.token_hash, revoked_at: null }))
        .execute();
      return;
    }
    // The setting was removed: the key it defined stops working.
    await db
      .updateTable('api_keys')
      .set({ revoked_at: clock.now() })
      .where('id', '=', ENV_ADMIN_KEY_ID)
      .where('revoked_at', 'is', null)
      .execute();
    const existing = await db
      .selectFrom('api_keys')
      .select('id')
      .where('role', '=', 'admin')
      .where('revoked_at', 'is', null)
      .where('id', '!=', ENV_ADMIN_KEY_ID)
      .executeTakeFirst();
    if (existing) return;
    const { token } = await create(null, { name: 'bootstrap admin', role: 'admin' });
    const file = join(opts.dataDir, 'admin-token');
    await mkdir(opts.dataDir, { recursive: true });
    await writeFile(file, `${token}\n`, { mode: 0o600 });
    await chmod(file, 0o600);
    opts.announce({ file, token });
  }

  return { authenticate, create, list, revoke, bootstrap };
}

export type ApiKeys = ReturnType<typeof createApiKeys>;
