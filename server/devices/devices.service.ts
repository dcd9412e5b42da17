// Device registry rules: registration, lifecycle, credentials, desired config.
import type { Kysely } from 'kysely';
import { PROTOCOL_VERSION, type DeviceConfig } from '../../protocol/messages.ts';
import type { Audit } from '../access/audit.service.ts';
import { json, type Db } from '../db/index.ts';
import type { Database, Device, DeviceRow } from '../db/schema.ts';
import type { FleetBus } from '../events/bus-events.ts';
import type { Outbox } from '../events/outbox.ts';
import type { Principal } from '../http/types.ts';
import type { Clock } from '../lib/clock.ts';
import { conflict, notFound, unprocessable } from '../lib/errors.ts';
import { newId } from '../lib/ids.ts';
import { createLoader } from '../lib/loader.ts';
import { hashSecret, newSecret, secretMatches } from '../lib/secrets.ts';
import { createDevicesRepo, type DeviceFilter } from './devices.repo.ts';
import { canTransition, mayConnect, type DeviceStatus } from './lifecycle.ts';
import type { DeviceLink } from './link.ts';
import { isValidTimezone } from './timezones.ts';

export interface DevicesDeps {
  db: Db;
  clock: Clock;
  audit: Audit;
  bus: FleetBus;
  outbox: Outbox;
  link: DeviceLink;
  defaultHeartbeatS: number;
  mqttUrl: () => string;
}

export interface NewDeviceInput {
  serial: string;
  model: string;
  merchantId?: string | null;
  tags?: string[];
  timezone?: string | null;
  warrantyUntil?: string | null;
  firmware?: string;
  apps?: Record<string, string>;
}

export interface DevicePatch {
  merchantId?: string | null;
  tags?: string[];
  timezone?: string | null;
  warrantyUntil?: string | null;
  model?: string;
  status?: DeviceStatus;
  heartbeatIntervalS?: number;
  config?: Record<string, unknown>;
}

/** The devices among `deviceIds` whose presence and health are among those given (the health module answers). */
export type HealthFilter = (deviceIds: string[], f: { presence?: string[]; health?: string[] }) => Promise<Set<string>>;

export function deviceView(d: DeviceRow) {
  const iso = (x: Date | null) => x?.toISOString() ?? null;
  return {
    id: d.id,
    serial: d.serial,
    model: d.model,
    merchantId: d.merchant_id,
    tags: d.tags,
    timezone: d.timezone,
    warrantyUntil: d.warranty_until,
    status: d.status,
    firmware: d.firmware,
    apps: d.apps,
    config: { revision: d.config_revision, ...d.config },
    connected: d.connected,
    lastConnectedAt: iso(d.last_connected_at),
    lastDisconnectedAt: iso(d.last_disconnected_at),
    lastSeenAt: iso(d.last_seen_at),
    createdAt: d.created_at.toISOString(),
    updatedAt: d.updated_at.toISOString(),
    approvedAt: iso(d.approved_at),
    decommissionedAt: iso(d.decommissioned_at),
  };
}
export type DeviceView = ReturnType<typeof deviceView>;

/** The device fields that outbox events carry, so webhook filters (merchant, model, tags) can match. */
export function deviceFacts(d: Pick<Device, 'id' | 'serial' | 'model' | 'merchant_id' | 'tags'>) {
  return { deviceId: d.id, serial: d.serial, model: d.model, merchantId: d.merchant_id, tags: d.tags };
}

export function createDevices(deps: DevicesDeps) {
  const { db, clock, audit, bus, link } = deps;
  const repo = createDevicesRepo(db);
  // A reconnecting fleet authenticates and subscribes thousands of terminals at
  // once: their lookups are coalesced into one query per few ms.
  const authLoader = createLoader(repo.authRows);
  const deviceLoader = createLoader(repo.getMany);

  async function require(id: string): Promise<DeviceRow> {
    const d = await repo.get(id);
    if (!d) throw notFound('device', id);
    return d;
  }

  /**
   * `require` coalesced with the lookups of the next few ms into one query: for
   * the MQTT paths a whole fleet hits at once (an HTTP request would only wait).
   */
  async function requireBatched(id: string): Promise<DeviceRow> {
    const d = await deviceLoader.load(id);
    if (!d) throw notFound('device', id);
    return d;
  }

  function credentials(deviceId: string, token: string, heartbeatIntervalS: number) {
    return {
      deviceId,
      mqtt: { url: deps.mqttUrl(), username: deviceId, password: token, clientId: deviceId },
      heartbeatIntervalS,
    };
  }

  async function checkRefs(trx: Kysely<Database>, input: { merchantId?: string | null; timezone?: string | null }) {
    if (input.timezone && !isValidTimezone(input.timezone))
      throw unprocessable('invalid_timezone', `timezone '${input.timezone}' is not an IANA timezone`);
    if (input.merchantId) {
      const m = await trx.selectFrom('merchants').select('id').where('id', '=', input.merchantId).executeTakeFirst();
      if (!m) throw unprocessable('unknown_merchant', `merchant ${input.merchantId} does not exist`);
    }
  }

  /** Inserts a device with fresh credentials; used by pre-registration and enrolment. */
  async function insert(
    trx: Kysely<Database>,
    input: NewDeviceInput & { status: DeviceStatus; enrollmentTokenId?: string },
  ) {
    await checkRefs(trx, input);
    const taken = await trx.selectFrom('devices').select('id').where('serial', '=', input.serial).executeTakeFirst();
    if (taken)
      throw conflict('serial_taken', `a device with serial ${input.serial} is already registered`, {
        deviceId: taken.id,
      });
    const now = clock.now();
    const id = newId('dev', now.getTime());
    const token = newSecret('pfd');
    await trx
      .insertInto('devices')
      .values({
        id,
        serial: input.serial,
        model: input.model,
        merchant_id: input.merchantId ?? null,
        tags: json(input.tags ?? []),
        timezone: input.timezone ?? null,
        warranty_until: input.warrantyUntil ?? null,
        status: input.status,
        token_hash: hashSecret(token),
        firmware: input.firmware ?? null,
        apps: json(input.apps ?? {}),
        config: json({ heartbeatIntervalS: deps.defaultHeartbeatS }),
        enrollment_token_id: input.enrollmentTokenId ?? null,
        created_at: now,
        updated_at: now,
        approved_at: input.status === 'active' ? now : null,
      })
      .execute();
    await deps.outbox.add(trx, {
      type: 'device.enrolled',
      subject: { type: 'device', id },
      data: {
        ...deviceFacts({
          id,
          serial: input.serial,
          model: input.model,
          merchant_id: input.merchantId ?? null,
          tags: input.tags ?? [],
        }),
        status: input.status,
        firmware: input.firmware ?? null,
        via: input.enrollmentTokenId ? 'enrollment' : 'pre_registration',
      },
    });
    return { id, token };
  }

  async function preRegister(actor: Principal, input: NewDeviceInput) {
    const { id, token } = await db.transaction().execute(async (trx) => {
      const created = await insert(trx, { ...input, status: 'active' });
      await audit.record(trx, actor, {
        action: 'device.registered',
        targetType: 'device',
        targetId: created.id,
        details: { serial: input.serial, model: input.model },
      });
      return created;
    });
    deps.outbox.notify();
    bus.emit('device.enrolled', { deviceId: id, merchantId: input.merchantId ?? null, status: 'active' });
    return { device: deviceView(await require(id)), credentials: credentials(id, token, deps.defaultHeartbeatS) };
  }

  async function update(actor: Principal, id: string, patch: DevicePatch) {
    const before = await require(id);
    if (patch.status && patch.status !== before.status) {
      if (patch.status === 'decommissioned') return decommission(actor, id);
      if (!canTransition(before.status as DeviceStatus, patch.status)) {
        throw unprocessable('invalid_transition', `a ${before.status} device cannot become ${patch.status}`);
      }
    }
    const configChanged = patch.heartbeatIntervalS !== undefined || patch.config !== undefined;
    const newConfig = {
      ...before.config,
      ...(patch.config ?? {}),
      ...(patch.heartbeatIntervalS !== undefined && { heartbeatIntervalS: patch.heartbeatIntervalS }),
    };
    const now = clock.now();
    await db.transaction().execute(async (trx) => {
      await checkRefs(trx, patch);
      await trx
        .updateTable('devices')
        .set({
          ...(patch.merchantId !== undefined && { merchant_id: patch.merchantId }),
          ...(patch.tags !== undefined && { tags: json(patch.tags) }),
          ...(patch.timezone !== undefined && { timezone: patch.timezone }),
          ...(patch.warrantyUntil !== undefined && { warranty_until: patch.warrantyUntil }),
          ...(patch.model !== undefined && { model: patch.model }),
          ...(patch.status !== undefined && { status: patch.status }),
          ...(patch.status === 'active' && before.status === 'pending' && { approved_at: now }),
          ...(configChanged && { config: json(newConfig), config_revision: before.config_revision + 1 }),
          updated_at: now,
        })
        .where('id', '=', id)
        .execute();
      await audit.record(trx, actor, {
        action: 'device.updated',
        targetType: 'device',
        targetId: id,
        details: { fields: Object.keys(patch) },
      });
    });
    const after = await require(id);
    if (patch.status && patch.status !== before.status) {
      bus.emit('device.status_changed', { deviceId: id, from: before.status, to: patch.status });
      if (!mayConnect(patch.status)) link.disconnect(id);
    }
    if (configChanged) await pushConfig(after);
    bus.emit('device.updated', { deviceId: id, changes: Object.keys(patch) });
    return deviceView(after);
  }

  function desiredConfig(d: Device): DeviceConfig {
    return {
      heartbeatIntervalS: deps.defaultHeartbeatS,
      ...d.config,
      v: PROTOCOL_VERSION,
      revision: d.config_revision,
    };
  }

  async function pushConfig(d: Device): Promise<void> {
    await link.sendConfig(d.id, desiredConfig(d));
    bus.emit('device.config_changed', { deviceId: d.id, revision: d.config_revision });
  }

  /** Revokes the credentials and cuts the live session at once. */
  async function decommission(actor: Principal, id: string) {
    const before = await require(id);
    if (before.status === 'decommissioned')
      throw conflict('already_decommissioned', `device ${id} is already decommissioned`);
    const now = clock.now();
    await db.transaction().execute(async (trx) => {
      await trx
        .updateTable('devices')
        .set({ status: 'decommissioned', token_hash: null, decommissioned_at: now, updated_at: now })
        .where('id', '=', id)
        .execute();
      await trx
        .updateTable('commands')
        .set({ state: 'expired' })
        .where('device_id', '=', id)
        .where('state', 'in', ['queued', 'sent', 'deferred'])
        .execute();
      await audit.record(trx, actor, { action: 'device.decommissioned', targetType: 'device', targetId: id });
      await deps.outbox.add(trx, {
        type: 'device.decommissioned',
        subject: { type: 'device', id },
        data: { ...deviceFacts(before), previousStatus: before.status },
      });
    });
    deps.outbox.notify();
    link.disconnect(id);
    bus.emit('device.status_changed', { deviceId: id, from: before.status, to: 'decommissioned' });
    bus.emit('device.decommissioned', { deviceId: id });
    return deviceView(await require(id));
  }

  async function rotateCredentials(actor: Principal, id: string) {
    const d = await require(id);
    if (d.status === 'decommissioned') throw conflict('decommissioned', `device ${id} is decommissioned`);
    const token = newSecret('pfd');
    await db.transaction().execute(async (trx) => {
      await trx
        .updateTable('devices')
        .set({ token_hash: hashSecret(token), credentials_rotated_at: clock.now(), updated_at: clock.now() })
        .where('id', '=', id)
        .execute();
      await audit.record(trx, actor, { action: 'device.credentials_rotated', targetType: 'device', targetId: id });
    });
    link.disconnect(id); // the old session was opened with the old token
    bus.emit('device.credentials_rotated', { deviceId: id });
    return credentials(id, token, Number(d.config.heartbeatIntervalS ?? deps.defaultHeartbeatS));
  }

  /** MQTT CONNECT check: 'ok', 'bad_credentials' (rc 4) or 'not_authorized' (rc 5). */
  async function authenticateDevice(
    id: string,
    password: Buffer | undefined,
  ): Promise<'ok' | 'bad_credentials' | 'not_authorized'> {
    const row = await authLoader.load(id);
    const matches = password !== undefined && secretMatches(password, row?.token_hash ?? '0'.repeat(64));
    if (!row || !matches) return 'bad_credentials';
    return mayConnect(row.status) ? 'ok' : 'not_authorized';
  }

  // Presence and health belong to the health module, created after this one: it supplies the filter.
  let healthFilter: HealthFilter | null = null;

  async function list(f: DeviceFilter & { presence?: string[]; health?: string[] }, limit: number, cursor?: string) {
    const { presence, health, ...rest } = f;
    const wanted = { presence, health };
    const keep =
      presence?.length || health?.length
        ? (rows: DeviceRow[]) => {
            if (!healthFilter) throw new Error('presence and health filters need the health module');
            return healthFilter(
              rows.map((r) => r.id),
              wanted,
            );
          }
        : undefined;
    const { rows, nextCursor } = await repo.list(rest, limit, cursor, keep);
    return { items: rows.map(deviceView), nextCursor };
  }

  return {
    get: async (id: string) => deviceView(await require(id)),
    require,
    requireBatched,
    list,
    setHealthFilter: (f: HealthFilter) => void (healthFilter = f),
    insert,
    preRegister,
    update,
    decommission,
    rotateCredentials,
    authenticateDevice,
    credentials,
    desiredConfig,
    pushConfig,
  };
}

export type Devices = ReturnType<typeof createDevices>;
