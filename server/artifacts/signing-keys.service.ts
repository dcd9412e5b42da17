// Trusted publisher keys: an upload is accepted only when its manifest names
// one of these by key id and verifies with it.
import { keyIdOf, publicKeyPemOf } from '../../firmware/keys.ts';
import type { Audit } from '../access/audit.service.ts';
import type { Db } from '../db/index.ts';
import type { Principal } from '../http/types.ts';
import type { Clock } from '../lib/clock.ts';
import { badRequest, conflict, notFound } from '../lib/errors.ts';
import type { ArtifactsRepo } from './artifacts.repo.ts';
import type { SigningKeyRow } from './artifacts.tables.ts';

export function signingKeyView(k: SigningKeyRow) {
  return {
    id: k.id,
    name: k.name,
    publicKey: k.public_key,
    createdBy: k.created_by,
    createdAt: k.created_at.toISOString(),
  };
}

export function createSigningKeys(deps: { db: Db; clock: Clock; audit: Audit; repo: ArtifactsRepo }) {
  const { db, clock, audit, repo } = deps;

  async function add(actor: Principal, input: { name: string; publicKey: string }) {
    if (input.publicKey.includes('PRIVATE KEY')) {
      throw badRequest(
        'invalid_public_key',
        'publicKey is a private key: send publisher.pub, and keep publisher.key secret',
      );
    }
    let id: string;
    let pem: string;
    try {
      id = keyIdOf(input.publicKey);
      pem = publicKeyPemOf(input.publicKey);
    } catch (err) {
      throw badRequest(
        'invalid_public_key',
        `publicKey is not an ed25519 public key in PEM: ${(err as Error).message}`,
      );
    }
    if (await repo.getKey(id)) throw conflict('signing_key_exists', `signing key ${id} is already trusted`, { id });
    await db.transaction().execute(async (trx) => {
      await trx
        .insertInto('signing_keys')
        .values({ id, name: input.name, public_key: pem, created_at: clock.now(), created_by: actor.keyId })
        .execute();
      await audit.record(trx, actor, {
        action: 'signing_key.added',
        targetType: 'signing_key',
        targetId: id,
        details: { name: input.name },
      });
    });
    return signingKeyView((await repo.getKey(id))!);
  }

  async function list(q: { limit: number; cursor?: string }) {
    const { rows, nextCursor } = await repo.listKeys(q.limit, q.cursor);
    return { items: rows.map(signingKeyView), nextCursor };
  }

  /** Stored artifacts stay: they were verified at upload, and terminals verify again with their own trust. */
  async function remove(actor: Principal, id: string): Promise<void> {
    await db.transaction().execute(async (trx) => {
      const gone = await trx.deleteFrom('signing_keys').where('id', '=', id).executeTakeFirst();
      if (gone.numDeletedRows === 0n) throw notFound('signing_key', id);
      await audit.record(trx, actor, { action: 'signing_key.deleted', targetType: 'signing_key', targetId: id });
    });
  }

  return { add, list, remove, get: repo.getKey };
}

export type SigningKeys = ReturnType<typeof createSigningKeys>;
