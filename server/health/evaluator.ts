// Rule evaluation over batches of observations (heartbeats, events, presence
// changes). Reads the rules from the cache and the persisted per-(device, rule)
// states of the devices in the batch, steps each applicable rule, and writes
// changed states and alert effects in one transaction, so a restart neither
// re-fires nor forgets. Work is proportional to the rules that apply.
import { sql, type Kysely } from 'kysely';
import type { Logger } from 'pino';
import { json, type Db } from '../db/index.ts';
import type { Database } from '../db/schema.ts';
import type { Outbox } from '../events/outbox.ts';
import { Batcher } from '../lib/batcher.ts';
import type { Observation } from '../telemetry/ingest.ts';
import type { Alerts, DeviceMeta } from './alerts.service.ts';
import type { AlertRow } from './health.tables.ts';
import {
  applies,
  initialRuleState,
  isDefaultState,
  isFlapping,
  metricAt,
  sameState,
  step,
  type RuleState,
} from './rules.engine.ts';
import { inScope, type Rule, type Rules } from './rules.service.ts';

/** Opens the ticket an alert+ticket rule asks for; returns its id. */
export type TicketOpener = (
  trx: Kysely<Database>,
  alert: AlertRow,
  device: DeviceMeta,
  rule: Rule,
) => Promise<string | null>;

type Effect =
  | { kind: 'open'; device: DeviceMeta; rule: Rule; value: unknown; at: Date; flapping: boolean }
  | { kind: 'touch'; device: DeviceMeta; rule: Rule; value: unknown; at: Date; flapping: boolean }
  | { kind: 'resolve'; device: DeviceMeta; rule: Rule };

const k = (deviceId: string, ruleId: string) => `${deviceId}|${ruleId}`;

/** The observations by time; they mostly come in order already (one pass then, no sort). */
function inTimeOrder(obs: Observation[]): Observation[] {
  for (let i = 1; i < obs.length; i++) {
    if (obs[i].at.getTime() < obs[i - 1].at.getTime()) return [...obs].sort((a, b) => a.at.getTime() - b.at.getTime());
  }
  return obs;
}
/** The state of a rule that has no row: shared, never mutated (step returns new objects). */
const QUIET: RuleState = Object.freeze(initialRuleState()) as RuleState;

async function loadDevices(db: Kysely<Database>, ids: string[]): Promise<Map<string, DeviceMeta>> {
  // = ANY(array): one parameter however many devices the batch holds.
  const rows = await db
    .selectFrom('devices')
    .select(['id', 'model', 'merchant_id', 'tags', 'status'])
    .where('id', '=', sql<string>`any(${ids}::text[])`)
    .execute();
  return new Map(
    rows.map((r) => [r.id, { id: r.id, model: r.model, merchantId: r.merchant_id, tags: r.tags, status: r.status }]),
  );
}

export function createEvaluator(deps: {
  db: Db;
  rules: Rules;
  alerts: Alerts;
  outbox: Outbox;
  log: Logger;
  openTicket?: TicketOpener;
}) {
  const { db, rules, alerts, outbox } = deps;

  type Tentative = {
    deviceId: string;
    rule: Rule;
    effect: 'open' | 'touch' | 'resolve';
    value?: unknown;
    at: Date;
    flapping: boolean;
  };

  /**
   * Steps every applicable rule for every observation, in time order; pure apart from
   * `states`, which it updates. Scope is not judged here: that needs the device's row,
   * and the common batch (a healthy fleet) changes nothing and needs no row at all.
   * A (device, rule) out of scope is dropped whole afterwards (`inScopeOnly`): its
   * steps depend on nothing but its own state and observations.
   */
  function run(obs: Observation[], active: Rule[], stored: Map<string, Map<string, RuleState>>) {
    // This batch's states, copied from the stored ones on a device's first change: the cache
    // takes only what commits (and is in scope).
    const states = new Map<string, Map<string, RuleState>>();
    const changed = new Map<string, { deviceId: string; ruleId: string; state: RuleState }>();
    const effects: Tentative[] = [];
    for (const o of inTimeOrder(obs)) {
      // A device's states by rule (most devices have none stored): one lookup per observation, no key built per rule.
      let mine = states.get(o.deviceId) ?? stored.get(o.deviceId);
      for (const rule of active) {
        if (!applies(rule, o.metrics)) continue;
        const prev = mine?.get(rule.id) ?? QUIET;
        const { state, effect } = step(rule, prev, o.metrics, o.at.getTime());
        if (state !== prev && !sameState(state, prev)) {
          if (!states.has(o.deviceId)) states.set(o.deviceId, (mine = new Map(mine)));
          mine!.set(rule.id, state);
          changed.set(k(o.deviceId, rule.id), { deviceId: o.deviceId, ruleId: rule.id, state });
        }
        if (effect) {
          effects.push({
            deviceId: o.deviceId,
            rule,
            effect,
            at: o.at,
            flapping: effect !== 'resolve' && isFlapping(state, o.at.getTime()),
            value: effect === 'resolve' ? undefined : metricAt(o.metrics, rule.metric),
          });
        }
      }
    }
    return { changed: [...changed.values()], effects };
  }

  /** Keeps the changes and effects of rules in scope of live devices, loading only the devices concerned. */
  async function inScopeOnly(active: Rule[], tentative: ReturnType<typeof run>) {
    const ids = [
      ...new Set([...tentative.changed.map((c) => c.deviceId), ...tentative.effects.map((e) => e.deviceId)]),
    ];
    const devices = await loadDevices(db, ids);
    const ruleById = new Map(active.map((r) => [r.id, r]));
    const live = (deviceId: string, rule: Rule | undefined) => {
      const d = devices.get(deviceId);
      return d && d.status !== 'decommissioned' && rule && inScope(rule, d) ? d : undefined;
    };
    const changed = tentative.changed.filter((c) => live(c.deviceId, ruleById.get(c.ruleId)));
    const effects: Effect[] = [];
    for (const e of tentative.effects) {
      const device = live(e.deviceId, e.rule);
      if (!device) continue;
      effects.push(
        e.effect === 'resolve'
          ? { kind: 'resolve', device, rule: e.rule }
          : { kind: e.effect, device, rule: e.rule, value: e.value, at: e.at, flapping: e.flapping },
      );
    }
    return { changed, effects };
  }

  async function saveStates(
    trx: Kysely<Database>,
    changed: { deviceId: string; ruleId: string; state: RuleState }[],
    at: Date,
  ) {
    const keep = changed.filter((c) => !isDefaultState(c.state));
    const drop = changed.filter((c) => isDefaultState(c.state));
    if (keep.length > 0) {
      await sql`
        INSERT INTO rule_state (device_id, rule_id, state, updated_at)
        SELECT d, r, s::jsonb, ${at.toISOString()}::timestamptz
        FROM unnest(${keep.map((c) => c.deviceId)}::text[], ${keep.map((c) => c.ruleId)}::text[], ${keep.map((c) => json(c.state))}::text[]) AS x(d, r, s)
        ON CONFLICT (device_id, rule_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at`.execute(
        trx,
      );
    }
    if (drop.length > 0) {
      await sql`DELETE FROM rule_state WHERE (device_id, rule_id) IN (
        SELECT * FROM unnest(${drop.map((c) => c.deviceId)}::text[], ${drop.map((c) => c.ruleId)}::text[]))`.execute(
        trx,
      );
    }
  }

  async function applyEffects(trx: Kysely<Database>, effects: Effect[], open: Map<string, string>) {
    const touches: { alertId: string; at: Date; value: unknown; flapping: boolean }[] = [];
    // Resolves are written together; pending ones go first when an alert opens (it may re-open one of them).
    let closes: { alertId: string; tags: string[] }[] = [];
    const writeCloses = async () => {
      await alerts.closeMany(trx, closes, 'auto');
      closes = [];
    };
    for (const e of effects) {
      const existing = open.get(k(e.device.id, e.rule.id));
      if (e.kind === 'resolve') {
        if (existing) closes.push({ alertId: existing, tags: e.device.tags });
        open.delete(k(e.device.id, e.rule.id));
      } else if (existing) {
        touches.push({ alertId: existing, at: e.at, value: e.value, flapping: e.flapping });
      } else {
        // A touch with no open alert (resolved by hand while the rule still fired) opens a fresh one.
        await writeCloses();
        const alert = await alerts.open(trx, e.device, e.rule, e.value, e.at, e.flapping);
        open.set(k(e.device.id, e.rule.id), alert.id);
        if (e.rule.action === 'alert+ticket' && !alert.muted && deps.openTicket) {
          const ticketId = await deps.openTicket(trx, alert, e.device, e.rule);
          if (ticketId)
            await trx.updateTable('alerts').set({ ticket_id: ticketId }).where('id', '=', alert.id).execute();
        }
      }
    }
    await writeCloses();
    await alerts.touchMany(trx, touches);
  }

  // The stored rule states of the devices evaluated, by device (an empty map: none stored). Written
  // through (rule_state is the record; a restart reads it again); the evaluator is its only
  // writer but for the resets alerts.service makes, which call `forgetStates`.
  const cache = new Map<string, Map<string, RuleState>>();

  async function loadStates(ids: string[]): Promise<void> {
    const missing = ids.filter((id) => !cache.has(id));
    if (missing.length === 0) return;
    const rows = await db
      .selectFrom('rule_state')
      .selectAll()
      .where('device_id', '=', sql<string>`any(${missing}::text[])`)
      .execute();
    for (const id of missing) cache.set(id, new Map());
    for (const r of rows) cache.get(r.device_id)!.set(r.rule_id, r.state as RuleState);
  }

  /** Drops cached states: a device's (all its rules, or one), or a rule's on every device. */
  function forgetStates(deviceId: string | null, ruleId: string | null = null): void {
    if (deviceId && ruleId) cache.get(deviceId)?.delete(ruleId);
    else if (deviceId) cache.delete(deviceId);
    else if (ruleId) for (const mine of cache.values()) mine.delete(ruleId);
  }

  async function evaluate(obs: Observation[]): Promise<void> {
    const active = await rules.active();
    if (active.length === 0 || obs.length === 0) return;
    const ids = [...new Set(obs.map((o) => o.deviceId))];
    await loadStates(ids);
    const tentative = run(obs, active, cache);
    if (tentative.changed.length === 0 && tentative.effects.length === 0) return;
    const { changed, effects } = await inScopeOnly(active, tentative);
    if (changed.length === 0 && effects.length === 0) return;
    await db.transaction().execute(async (trx) => {
      const openRows = await trx
        .selectFrom('alerts')
        .select(['id', 'device_id', 'rule_id'])
        .where('device_id', 'in', [...new Set(effects.map((e) => e.device.id))].concat(''))
        .where('state', '<>', 'resolved')
        .execute();
      await saveStates(trx, changed, obs[obs.length - 1].at);
      await applyEffects(trx, effects, new Map(openRows.map((r) => [k(r.device_id, r.rule_id), r.id])));
    });
    for (const c of changed) {
      const mine = cache.get(c.deviceId);
      if (!mine) continue; // forgotten meanwhile: read again next time
      if (isDefaultState(c.state)) mine.delete(c.ruleId);
      else mine.set(c.ruleId, c.state);
    }
    if (effects.some((e) => e.kind !== 'touch')) outbox.notify();
  }

  // One writer per instance keeps the per-(device, rule) state sequential.
  const batcher = new Batcher<Observation>({ maxItems: 2_000, maxDelayMs: 10, flush: evaluate });

  return {
    /** Queue observations; evaluation happens shortly after (not on the PUBACK path). */
    observe(obs: Observation[]): void {
      batcher
        .addMany(obs)
        .catch((err: unknown) =>
          deps.log.error(
            { err, devices: [...new Set(obs.map((o) => o.deviceId))].slice(0, 20) },
            'rule evaluation failed',
          ),
        );
    },
    /** Evaluate now and wait (sweeps and tests). */
    evaluateNow: (obs: Observation[]) => batcher.addMany(obs),
    drain: () => batcher.drain(),
    forgetStates,
  };
}

export type Evaluator = ReturnType<typeof createEvaluator>;
