// Health rules: CRUD, the default set, and an in-memory cache the evaluator
// reads on every batch (reloaded after a change here, and every 30 s so that
// changes made by another instance arrive too).
import type { Audit } from '../access/audit.service.ts';
import { json, type Db } from '../db/index.ts';
import type { Principal } from '../http/types.ts';
import type { Clock } from '../lib/clock.ts';
import { notFound } from '../lib/errors.ts';
import { newId } from '../lib/ids.ts';
import type { HealthRuleRow } from './health.tables.ts';
import type { Comparison, Condition, RuleSpec } from './rules.engine.ts';
import { DEFAULT_RULES } from './rules.defaults.ts';
import type { NewRule, ruleSchema } from './rules.schemas.ts';
import type { z } from '../http/openapi.ts';

type RuleView = z.infer<typeof ruleSchema>;

export interface Rule extends RuleSpec {
  name: string;
  description: string | null;
  severity: 'info' | 'warning' | 'critical';
  scope: { models?: string[]; merchantIds?: string[]; tags?: string[] };
  action: 'alert' | 'alert+ticket';
  ticket: { kind: string; part?: string | null } | null;
  remediation: string | null;
  enabled: boolean;
  builtin: boolean;
  createdAt: Date;
  updatedAt: Date;
}

const RELOAD_MS = 30_000;

function toRule(r: HealthRuleRow): Rule {
  return {
    id: r.id,
    name: r.name,
    description: r.description,
    metric: r.metric,
    comparison: r.comparison as Comparison,
    threshold: r.threshold,
    clearThreshold: r.clear_threshold ?? null,
    conditions: (r.conditions ?? []) as Condition[],
    forCount: r.for_count,
    forSeconds: r.for_seconds,
    severity: r.severity as Rule['severity'],
    scope: r.scope ?? {},
    action: r.action as Rule['action'],
    ticket: r.ticket ?? null,
    remediation: r.remediation,
    enabled: r.enabled,
    builtin: r.builtin,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export function ruleView(r: Rule): RuleView {
  return {
    id: r.id,
    name: r.name,
    description: r.description ?? undefined,
    metric: r.metric,
    comparison: r.comparison,
    threshold: r.threshold as RuleView['threshold'],
    clearThreshold: (r.clearThreshold ?? null) as RuleView['clearThreshold'],
    conditions: r.conditions as RuleView['conditions'],
    forCount: r.forCount,
    forSeconds: r.forSeconds,
    severity: r.severity,
    scope: r.scope,
    action: r.action,
    ticket: r.ticket as RuleView['ticket'],
    remediation: r.remediation ?? undefined,
    enabled: r.enabled,
    builtin: r.builtin,
    createdAt: r.createdAt.toISOString(),
    updatedAt: r.updatedAt.toISOString(),
  };
}

function columns(input: NewRule) {
  return {
    name: input.name,
    description: input.description ?? null,
    metric: input.metric,
    comparison: input.comparison,
    threshold: json(input.threshold),
    clear_threshold: input.clearThreshold == null ? null : json(input.clearThreshold),
    conditions: json(input.conditions ?? []),
    for_count: input.forCount ?? 1,
    for_seconds: input.forSeconds ?? null,
    severity: input.severity,
    scope: json(input.scope ?? {}),
    action: input.action,
    ticket: input.ticket ? json(input.ticket) : null,
    remediation: input.remediation ?? null,
    enabled: input.enabled ?? true,
  };
}

/** Does the rule's scope cover this device? An empty scope covers all. */
export function inScope(rule: Rule, d: { model: string; merchantId: string | null; tags: string[] }): boolean {
  const s = rule.scope;
  if (s.models?.length && !s.models.includes(d.model)) return false;
  if (s.merchantIds?.length && !(d.merchantId && s.merchantIds.includes(d.merchantId))) return false;
  if (s.tags?.length && !s.tags.some((t) => d.tags.includes(t))) return false;
  return true;
}

export function createRules(deps: { db: Db; clock: Clock; audit: Audit }) {
  const { db, clock, audit } = deps;
  let cache: { rules: Rule[]; at: number } | undefined;
  let seeded: Promise<void> | undefined;
  /** The defaults are seeded on first use (idempotent across instances and restarts). */
  const ensureSeeded = () =>
    (seeded ??= seedDefaults().catch((err: unknown) => {
      seeded = undefined;
      throw err;
    }));

  async function seedDefaults(): Promise<void> {
    const now = clock.now();
    await db
      .insertInto('health_rules')
      .values(DEFAULT_RULES.map((r) => ({ id: r.id, ...columns(r), builtin: true, created_at: now, updated_at: now })))
      .onConflict((oc) => oc.column('id').doNothing())
      .execute();
    cache = undefined;
  }

  /** Enabled rules, from the cache. */
  async function active(): Promise<Rule[]> {
    if (!cache || Date.now() - cache.at > RELOAD_MS) {
      await ensureSeeded();
      const rows = await db
        .selectFrom('health_rules')
        .selectAll()
        .where('deleted_at', 'is', null)
        .where('enabled', '=', true)
        .orderBy('id')
        .execute();
      cache = { rules: rows.map(toRule), at: Date.now() };
    }
    return cache.rules;
  }

  async function require(id: string): Promise<Rule> {
    const row = await db
      .selectFrom('health_rules')
      .selectAll()
      .where('id', '=', id)
      .where('deleted_at', 'is', null)
      .executeTakeFirst();
    if (!row) throw notFound('health_rule', id);
    return toRule(row);
  }

  async function list() {
    await ensureSeeded();
    const rows = await db
      .selectFrom('health_rules')
      .selectAll()
      .where('deleted_at', 'is', null)
      .orderBy('id')
      .execute();
    return { items: rows.map((r) => ruleView(toRule(r))), nextCursor: null };
  }

  async function create(actor: Principal, input: NewRule) {
    const now = clock.now();
    const id = newId('rule', now.getTime());
    await db.transaction().execute(async (trx) => {
      await trx
        .insertInto('health_rules')
        .values({ id, ...columns(input), builtin: false, created_at: now, updated_at: now })
        .execute();
      await audit.record(trx, actor, {
        action: 'health_rule.created',
        targetType: 'health_rule',
        targetId: id,
        details: { name: input.name },
      });
    });
    cache = undefined;
    return ruleView(await require(id));
  }

  async function replace(actor: Principal, id: string, input: NewRule) {
    await require(id);
    await db.transaction().execute(async (trx) => {
      await trx
        .updateTable('health_rules')
        .set({ ...columns(input), updated_at: clock.now() })
        .where('id', '=', id)
        .execute();
      await audit.record(trx, actor, { action: 'health_rule.updated', targetType: 'health_rule', targetId: id });
    });
    cache = undefined;
    return ruleView(await require(id));
  }

  /** Soft delete, so a deleted default rule is not seeded again. */
  async function remove(actor: Principal, id: string, onDeleted: (ruleId: string) => Promise<void>) {
    await require(id);
    await db.transaction().execute(async (trx) => {
      await trx
        .updateTable('health_rules')
        .set({ deleted_at: clock.now(), enabled: false })
        .where('id', '=', id)
        .execute();
      await audit.record(trx, actor, { action: 'health_rule.deleted', targetType: 'health_rule', targetId: id });
    });
    cache = undefined;
    await onDeleted(id);
  }

  return {
    seedDefaults,
    active,
    require,
    list,
    create,
    replace,
    remove,
    get: async (id: string) => ruleView(await require(id)),
  };
}

export type Rules = ReturnType<typeof createRules>;
