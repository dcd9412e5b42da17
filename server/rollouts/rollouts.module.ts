// The rollouts module: cohorts, plans, rollouts, the engine and its job.
import type { Logger } from 'pino';
import type { Heartbeat, OtaReport } from '../../protocol/messages.ts';
import type { Audit } from '../access/audit.service.ts';
import type { Artifacts } from '../artifacts/artifacts.service.ts';
import type { Db } from '../db/index.ts';
import type { Commands } from '../devices/commands.service.ts';
import type { Outbox } from '../events/outbox.ts';
import type { JobSpec } from '../jobs/scheduler.ts';
import type { Clock } from '../lib/clock.ts';
import type { HealthFilter } from '../devices/devices.service.ts';
import { createCohorts } from './cohorts.service.ts';
import type { HealthGate } from './device-progress.ts';
import { createEngine } from './engine.ts';
import { createRollbackPlanner } from './rollback.ts';
import { rolloutRoutes } from './rollouts.routes.ts';
import { createRollouts } from './rollouts.service.ts';

export interface RolloutsModuleDeps {
  db: Db;
  clock: Clock;
  log: Logger;
  audit: Audit;
  outbox: Outbox;
  commands: Commands;
  artifacts: Artifacts;
  signedDownloadUrl: (artifactId: string, deviceId: string | null, ttlS: number) => string;
  isConnected: (deviceId: string) => boolean;
  healthGate: HealthGate;
  healthFilter?: HealthFilter;
}

export function createRolloutsModule(deps: RolloutsModuleDeps) {
  const { db, clock, audit, outbox, artifacts } = deps;
  const cohorts = createCohorts({ db, clock, audit, healthFilter: deps.healthFilter });
  const rollouts = createRollouts({ db, clock, audit, outbox, cohorts, artifacts });
  const rollback = createRollbackPlanner({ db, rollouts, cohorts, artifacts });
  const engine = createEngine({
    db,
    clock,
    log: deps.log,
    rollouts,
    commands: deps.commands,
    artifacts,
    signedDownloadUrl: deps.signedDownloadUrl,
    isConnected: deps.isConnected,
    healthGate: deps.healthGate,
    rollback: () => rollback,
  });
  // An artifact a rollout uses may not be deleted (issue 5's port).
  artifacts.setInUseCheck((artifactId, trx) => rollouts.repo.usesArtifact(artifactId, trx));

  const jobs: JobSpec[] = [
    // Every 10 s (node-cron 6-field syntax); devices reporting in also wake the engine sooner.
    { name: 'rollouts.tick', cron: '*/10 * * * * *', jitterMs: 1_000, run: () => engine.tick() },
  ];

  return {
    cohorts,
    rollouts,
    rollback,
    engine,
    jobs,
    routers: [rolloutRoutes({ rollouts, cohorts, engine, rollback })],
    onOtaReport: (deviceId: string, report: OtaReport) => engine.onOtaReport(deviceId, report),
    onHeartbeat: (deviceId: string, hb: Heartbeat) => engine.onHeartbeat(deviceId, hb),
    /** A terminal came back: its owed update command is re-sent by the commands module; new work may be due. */
    onDeviceOnline: () => engine.kick(),
    stop: () => engine.stop(),
  };
}

export type RolloutsModule = ReturnType<typeof createRolloutsModule>;
