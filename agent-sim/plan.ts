// The fleet plan: everything about a fleet that the seed decides (serials,
// models, merchants, profiles), computed before any network work, so the same
// seed always yields the same fleet.
import { planMerchants, type SimMerchant } from './merchants.ts';
import { modelSpec } from './models.ts';
import { parseProfiles, profileFor, type ProfileSpec, type TerminalProfile } from './profiles.ts';
import { pick, streamRng } from './rng.ts';

export interface TerminalPlan {
  index: number;
  serial: string;
  model: string;
  merchantIndex: number;
  profile: TerminalProfile;
}

export interface FleetPlan {
  seed: number;
  merchants: SimMerchant[];
  terminals: TerminalPlan[];
  profiles: ProfileSpec[];
}

export interface PlanOptions {
  terminals: number;
  merchants?: number;
  models?: readonly string[];
  profiles?: string | readonly string[];
  seed?: number;
  /** Prefix of every serial; the seed is part of it so two fleets never collide. */
  serialPrefix?: string;
  /** Plan only terminals [from, to) of the fleet: how worker processes split one fleet. */
  range?: { from: number; to: number };
}

export function planFleet(opts: PlanOptions): FleetPlan {
  const seed = opts.seed ?? 1;
  const models = opts.models?.length ? [...opts.models] : ['T1', 'T2', 'T3'];
  models.forEach(modelSpec);
  const profiles = parseProfiles(opts.profiles);
  const merchants = planMerchants(opts.merchants ?? Math.max(1, Math.min(50, Math.ceil(opts.terminals / 40))), seed);
  const prefix = opts.serialPrefix ?? `sim${seed}`;
  const width = Math.max(5, String(opts.terminals).length);
  const from = opts.range?.from ?? 0;
  const to = Math.min(opts.terminals, opts.range?.to ?? opts.terminals);
  const terminals: TerminalPlan[] = [];
  for (let index = from; index < to; index++) {
    const model = pick(streamRng(seed, 'model', index), models);
    terminals.push({
      index,
      serial: `${prefix}-${model}-${String(index).padStart(width, '0')}`,
      model,
      merchantIndex: index % merchants.length,
      profile: profileFor(profiles, seed, index),
    });
  }
  return { seed, merchants, terminals, profiles };
}
