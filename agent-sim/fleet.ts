// The fleet runner: plans a seeded fleet, optionally sets up merchants and
// enrolment tokens with an admin token, starts terminals at a steady pace and
// hands back a handle that tests, the CLI and the benchmark inspect and steer.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { TerminalAgent } from './agent.ts';
import { realClock, type Clock } from './clock.ts';
import { FleetCounters, Limiter } from './counters.ts';
import { stateDirFor, type Identity } from './identity.ts';
import { planFleet, type FleetPlan } from './plan.ts';
import { setupMerchants } from './setup.ts';
import type { AgentState } from './states.ts';
import { fleetStats, type FleetStats, type FleetSummary } from './stats.ts';

export interface FleetOptions {
  /** posfleet HTTP base, e.g. http://127.0.0.1:8080. */
  server?: string;
  enrollToken?: string;
  /** Creates merchants (one per timezone spread) and one enrolment token per merchant. */
  adminToken?: string;
  /** One enrolment token per merchant, as a parent process hands them to workers. */
  merchantTokens?: string[];
  /** Given-credentials mode: identity per terminal index; no enrolment. */
  credentials?: Identity[];
  terminals: number;
  merchants?: number;
  models?: string[];
  heartbeatS?: number;
  profiles?: string | string[];
  seed?: number;
  speed?: number;
  /** Where identities are kept between runs; null keeps them in memory only. */
  stateDir?: string | null;
  /** PEM (SPKI ed25519) text, a KeyObject, or null to skip signature checks. */
  publicKey?: string | KeyObject | null;
  firmware?: string;
  apps?: Record<string, string>;
  clock?: Clock;
  /** Terminals started per second; 0 starts all at once. */
  rampPerSecond?: number;
  enrollConcurrency?: number;
  range?: { from: number; to: number };
  bootMs?: number;
  installMs?: number;
  downloadRetryMs?: number;
}

export interface FleetHandle {
  readonly plan: FleetPlan;
  readonly agents: readonly TerminalAgent[];
  readonly counters: FleetCounters;
  readonly clock: Clock;
  /** Resolves once every terminal has been started (not necessarily connected). */
  readonly started: Promise<void>;
  stats(): FleetStats;
  /** By serial, device id or fleet index. */
  agent(key: string | number): TerminalAgent | undefined;
  heartbeatNow(): void;
  /** Cuts the link of a share of terminals at once (a reconnect storm); returns how many. */
  dropConnections(fraction?: number): number;
  /** Takes the network away from every terminal, or gives it back. */
  setNetwork(up: boolean): void;
  waitFor(predicate: (fleet: FleetHandle) => boolean, opts?: { timeoutMs?: number; what?: string }): Promise<void>;
  waitForOnline(count?: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<FleetSummary>;
}

export async function startFleet(opts: FleetOptions): Promise<FleetHandle> {
  const clock = opts.clock ?? realClock();
  const seed = opts.seed ?? 1;
  const plan = planFleet({
    terminals: opts.terminals,
    merchants: opts.merchants,
    models: opts.models,
    profiles: opts.profiles,
    seed,
    range: opts.range,
  });
  const tokens = await merchantTokens(opts, plan);
  const counters = new FleetCounters();
  const limiter = new Limiter(opts.enrollConcurrency ?? 32);
  const stateDir = opts.stateDir && opts.server ? stateDirFor(opts.stateDir, opts.server) : (opts.stateDir ?? null);
  const publicKey = loadKey(opts.publicKey);
  const agents = plan.terminals.map(
    (t) =>
      new TerminalAgent({
        plan: t,
        merchant: plan.merchants[t.merchantIndex],
        seed,
        clock,
        counters,
        firmware: opts.firmware ?? '1.0.0',
        apps: opts.apps ?? { payment: '1.0.0' },
        heartbeatS: opts.heartbeatS ?? 30,
        speed: opts.speed ?? 1,
        server: opts.server,
        enrollToken: tokens[t.merchantIndex] ?? opts.enrollToken,
        enrollLimiter: limiter,
        credentials: opts.credentials?.[t.index],
        stateDir,
        publicKey,
        bootMs: opts.bootMs,
        installMs: opts.installMs,
        downloadRetryMs: opts.downloadRetryMs,
      }),
  );
  const byKey = new Map<string | number, TerminalAgent>();
  for (const a of agents) {
    byKey.set(a.serial, a);
    byKey.set(a.index, a);
  }
  let stopping = false;
  const started = ramp(agents, opts.rampPerSecond ?? 500, () => stopping);
  const startedAt = clock.now();
  const handle: FleetHandle = {
    plan,
    agents,
    counters,
    clock,
    started,
    stats: () => fleetStats(agents, counters, clock.now() - startedAt),
    agent: (key) => byKey.get(key) ?? agents.find((a) => a.deviceId === key),
    heartbeatNow: () => {
      for (const a of agents) a.heartbeatNow();
    },
    dropConnections(fraction = 1) {
      const online = agents.filter((a) => a.connected);
      const n = Math.round(online.length * fraction);
      for (const a of online.slice(0, n)) a.dropConnection();
      return n;
    },
    setNetwork: (up) => {
      for (const a of agents) a.setNetwork(up);
    },
    waitFor: (predicate, o) => poll(() => predicate(handle), o?.timeoutMs ?? 30_000, o?.what ?? 'fleet condition'),
    waitForOnline: (count = agents.length, timeoutMs = 30_000) =>
      poll(() => agents.filter((a) => a.connected).length >= count, timeoutMs, `${count} terminals online`),
    async stop() {
      stopping = true;
      await started;
      await Promise.all(agents.map((a) => a.stop().catch(() => undefined)));
      const stats = handle.stats();
      return { ...stats, counters: counters.toJSON() };
    },
  };
  return handle;
}

/** Admin-token mode, done once by a parent before it spreads the fleet over workers. */
export async function prepareMerchantTokens(opts: FleetOptions): Promise<string[] | undefined> {
  if (!opts.adminToken) return opts.merchantTokens;
  const plan = planFleet({
    terminals: opts.terminals,
    merchants: opts.merchants,
    models: opts.models,
    seed: opts.seed ?? 1,
    range: { from: 0, to: 0 },
  });
  return merchantTokens(opts, plan);
}

async function merchantTokens(opts: FleetOptions, plan: FleetPlan): Promise<string[]> {
  if (opts.merchantTokens) return opts.merchantTokens;
  if (!opts.adminToken) return [];
  if (!opts.server) throw new Error('--admin-token needs --server');
  return setupMerchants({
    server: opts.server,
    adminToken: opts.adminToken,
    merchants: plan.merchants,
    terminals: opts.terminals,
    seed: plan.seed,
    stateDir: opts.stateDir ?? null,
  });
}

function loadKey(key: FleetOptions['publicKey']): KeyObject | null {
  if (!key) return null;
  if (typeof key !== 'string') return key;
  return createPublicKey(key.includes('BEGIN') ? key : readFileSync(key, 'utf8'));
}

/** Starts terminals in small batches every 100 ms so connects and enrolments arrive evenly. */
async function ramp(agents: TerminalAgent[], perSecond: number, stopped: () => boolean): Promise<void> {
  const batch = perSecond > 0 ? Math.max(1, Math.round(perSecond / 10)) : agents.length;
  for (let i = 0; i < agents.length && !stopped(); i += batch) {
    await Promise.all(agents.slice(i, i + batch).map((a) => a.start()));
    if (i + batch < agents.length && perSecond > 0) await new Promise((r) => setTimeout(r, 100));
  }
}

async function poll(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export type { AgentState, FleetStats, FleetSummary };
