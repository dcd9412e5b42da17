// Zero-touch enrolment: an operator issues a token (expiry, uses, merchant,
// tags, approval); a terminal trades it for its own credentials.
import { sql } from 'kysely';
import type { CreateEnrollmentToken, EnrollRequest } from '../../protocol/http.ts';
import type { Audit } from '../access/audit.service.ts';
import { json, type Db } from '../db/index.ts';
import type { Principal } from '../http/types.ts';
import type { Clock } from '../lib/clock.ts';
import { DomainError, notFound, unprocessable } from '../lib/errors.ts';
import { decodeCursor, pageOf } from '../lib/cursor.ts';
import { newId } from '../lib/ids.ts';
import { hashSecret, newSecret } from '../lib/secrets.ts';
import type { FleetBus } from '../events/bus-events.ts';
import type { Outbox } from '../events/outbox.ts';
import type { Devices } from './devices.service.ts';
import type { EnrollmentToken } from '../db/schema.ts';

const DEFAULT_TTL_MIN = 7 * 24 * 60;

function tokenView(t: EnrollmentToken) {
  return {
    id: t.id,
    merchantId: t.merchant_id,
    tags: t.tags,
    maxUses: t.max_uses,
    uses: t.uses,
    requireApproval: t.require_approval,
    note: t.note,
    expiresAt: t.expires_at.toISOString(),
    createdAt: t.created_at.toISOString(),
    revokedAt: t.revoked_at?.toISOString() ?? null,
  };
}

const invalidToken = () =>
  new DomainError(
    'unauthorized',
    'invalid_enrollment_token',
    'the enrolment token is unknown, expired, revoked or used up',
  );

export function createEnrollment(deps: {
  db: Db;
  clock: Clock;
  audit: Audit;
  bus: FleetBus;
  outbox: Outbox;
  devices: Devices;
  defaultHeartbeatS: number;
}) {
  const { db, clock, audit } = deps;

  async function createToken(actor: Principal, input: CreateEnrollmentToken) {
    const now = clock.now();
    const id = newId('enr', now.getTime());
    const token = newSecret('pfe');
    const expiresAt = new Date(now.getTime() + (input.ttlMinutes ?? DEFAULT_TTL_MIN) * 60_000);
    await db.transaction().execute(async (trx) => {
      if (input.merchantId) {
        const m = await trx.selectFrom('merchants').select('id').where('id', '=', input.merchantId).executeTakeFirst();
        if (!m) throw unprocessable('unknown_merchant', `merchant ${input.merchantId} does not exist`);
      }
      await trx
        .insertInto('enrollment_tokens')
        .values({
          id,
          token_hash: hashSecret(token),
          merchant_id: input.merchantId ?? null,
          tags: json(input.tags ?? []),
          max_uses: input.maxUses ?? null,
          require_approval: input.requireApproval ?? false,
          note: input.note ?? null,
          expires_at: expiresAt,
          created_at: now,
          created_by: actor.keyId,
        })
        .execute();
      await audit.record(trx, actor, {
        action: 'enrollment_token.created',
        targetType: 'enrollment_token',
        targetId: id,
        details: { merchantId: input.merchantId, maxUses: input.maxUses },
      });
    });
    const row = await db.selectFrom('enrollment_tokens').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    return { ...tokenView(row), token };
  }

  async function listTokens(q: { limit: number; cursor?: string }) {
    let query = db
      .selectFrom('enrollment_tokens')
      .selectAll()
      .orderBy('id')
      .limit(q.limit + 1);
    const after = decodeCursor(q.cursor);
    if (after) query = query.where('id', '>', after);
    const { rows, nextCursor } = pageOf(await query.execute(), q.limit, (r) => r.id);
    return { items: rows.map(tokenView), nextCursor };
  }

  async function revokeToken(actor: Principal, id: string) {
    await db.transaction().execute(async (trx) => {
      const res = await trx
        .updateTable('enrollment_tokens')
        .set({ revoked_at: clock.now() })
        .where('id', '=', id)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) === 0) throw notFound('enrollment_token', id);
      await audit.record(trx, actor, {
        action: 'enrollment_token.revoked',
        targetType: 'enrollment_token',
        targetId: id,
      });
    });
  }

  /** Takes one use of the token and registers the terminal, in one transaction. */
  async function enroll(presented: string, req: EnrollRequest) {
    const now = clock.now();
    const tokenHash = hashSecret(presented);
    const result = await db.transaction().execute(async (trx) => {
      const tok = await trx
        .selectFrom('enrollment_tokens')
        .selectAll()
        .where('token_hash', '=', tokenHash)
        .where('revoked_at', 'is', null)
        .where('expires_at', '>', now)
        .where((eb) => eb.or([eb('max_uses', 'is', null), eb('uses', '<', eb.ref('max_uses'))]))
        .executeTakeFirst();
      if (!tok) throw invalidToken();
      const status = tok.require_approval ? 'pending' : 'active';
      const created = await deps.devices.insert(trx, {
        serial: req.serial,
        model: req.model,
        firmware: req.firmware,
        apps: req.apps,
        merchantId: tok.merchant_id,
        tags: tok.tags,
        status,
        enrollmentTokenId: tok.id,
      });
      await audit.record(trx, null, {
        action: 'device.enrolled',
        targetType: 'device',
        targetId: created.id,
        details: { serial: req.serial, enrollmentTokenId: tok.id, status },
      });
      // The use is taken last: the conditional UPDATE locks the token's row until
      // the commit, and every terminal enrolling with the same token waits for
      // that lock (a factory line, a store opening). Two terminals racing for the
      // last use cannot both win: the second re-checks the condition once the
      // first commits, matches nothing and rolls its device back.
      const taken = await trx
        .updateTable('enrollment_tokens')
        .set({ uses: sql`uses + 1` })
        .where('id', '=', tok.id)
        .where('revoked_at', 'is', null)
        .where('expires_at', '>', now)
        .where((eb) => eb.or([eb('max_uses', 'is', null), eb('uses', '<', eb.ref('max_uses'))]))
        .executeTakeFirst();
      if (Number(taken.numUpdatedRows) === 0) throw invalidToken();
      return { ...created, status, merchantId: tok.merchant_id };
    });
    deps.outbox.notify(); // devices.insert wrote device.enrolled in the transaction
    deps.bus.emit('device.enrolled', { deviceId: result.id, merchantId: result.merchantId, status: result.status });
    return { ...deps.devices.credentials(result.id, result.token, deps.defaultHeartbeatS), status: result.status };
  }

  return { createToken, listTokens, revokeToken, enroll };
}

export type Enrollment = ReturnType<typeof createEnrollment>;
