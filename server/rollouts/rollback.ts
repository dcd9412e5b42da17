// Rollback: a new rollout per previous version, back to each device's
// `from_version`, with the downgrade allowed explicitly.
import type { Artifacts } from '../artifacts/artifacts.service.ts';
import type { Db } from '../db/index.ts';
import type { Principal } from '../http/types.ts';
import { DomainError, unprocessable } from '../lib/errors.ts';
import type { Cohorts } from './cohorts.service.ts';
import type { RolloutSpec } from './rollouts.schemas.ts';
import type { Rollouts } from './rollouts.service.ts';
import { isRolloutFinal, type RolloutState } from './states.ts';

const SYSTEM: Principal = { keyId: 'system', name: 'rollout engine', role: 'admin' };

export function createRollbackPlanner(deps: { db: Db; rollouts: Rollouts; cohorts: Cohorts; artifacts: Artifacts }) {
  const { db, rollouts } = deps;

  async function rollBack(actor: Principal | null, id: string) {
    const r = await rollouts.require(id);
    if (r.rollback_of)
      throw unprocessable('is_rollback', 'a rollback cannot itself be rolled back; start a new rollout');
    if (!isRolloutFinal(r.state as RolloutState))
      await rollouts.transition(actor, id, 'cancelled', 'rolled back', 'rollout.cancelled');
    // Terminals that may have changed version: everything sent at least once.
    const rows = await db
      .selectFrom('rollout_devices')
      .select(['device_id', 'from_version'])
      .where('rollout_id', '=', id)
      .where('sends', '>', 0)
      .where('from_version', 'is not', null)
      .execute();
    const byVersion = new Map<string, string[]>();
    for (const row of rows) {
      if (row.from_version === r.version) continue;
      byVersion.set(row.from_version!, [...(byVersion.get(row.from_version!) ?? []), row.device_id]);
    }
    const spec = r.spec as RolloutSpec;
    const created = [];
    const missing: string[] = [];
    for (const [version, deviceIds] of byVersion) {
      const found = await deps.artifacts.list({ component: r.component, version: `=${version}` }, 1);
      const artifact = found.items[0];
      if (!artifact) {
        missing.push(version);
        continue;
      }
      const cohort = await deps.cohorts.create(actor ?? SYSTEM, { name: `rollback ${r.id} to ${version}`, deviceIds });
      const body: RolloutSpec = {
        ...spec,
        name: `rollback of ${r.name} to ${version}`,
        artifactId: artifact.id,
        cohortId: cohort.id,
        waves: [{ percent: 100 }],
        canaryDeviceIds: [],
        allowDowngrade: true,
        window: null,
        startAt: null,
        onFailure: 'pause',
        start: true,
      };
      const made = await rollouts.create(actor ?? SYSTEM, body).catch((err: unknown) => {
        // Terminals that never left the previous version need nothing.
        if (err instanceof DomainError && err.code === 'no_eligible_devices') return null;
        throw err;
      });
      if (!made) continue;
      await db.updateTable('rollouts').set({ rollback_of: r.id }).where('id', '=', made.id).execute();
      created.push({ ...made, rollbackOf: r.id });
    }
    if (created.length === 0 && missing.length > 0) {
      throw unprocessable(
        'previous_version_unavailable',
        `no artifact for ${r.component} ${missing.join(', ')}; upload it to roll back`,
      );
    }
    return { rollouts: created, missingVersions: missing };
  }

  return { rollBack };
}

export type RollbackPlanner = ReturnType<typeof createRollbackPlanner>;
