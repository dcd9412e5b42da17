// Wave membership: stable and seeded. Each eligible device gets a rank from a
// hash of (seed, device id); canaries go first. Wave i holds the first
// ceil(percent_i × N) devices of that order, so membership does not move when
// the rollout is re-planned or the server restarts.
import { createHash } from 'node:crypto';

export function rankOf(seed: string, deviceId: string): string {
  return createHash('sha256').update(`${seed}:${deviceId}`).digest('hex');
}

/** Assigns each device a wave index; `percents` are cumulative (e.g. [1, 10, 50, 100]). */
export function assignWaves(
  deviceIds: readonly string[],
  percents: readonly number[],
  seed: string,
  canaries: readonly string[] = [],
): Map<string, number> {
  const canarySet = new Set(canaries);
  const ordered = [...deviceIds].sort((a, b) => {
    const ca = canarySet.has(a) ? 0 : 1;
    const cb = canarySet.has(b) ? 0 : 1;
    if (ca !== cb) return ca - cb;
    return rankOf(seed, a) < rankOf(seed, b) ? -1 : 1;
  });
  const out = new Map<string, number>();
  let wave = 0;
  ordered.forEach((id, i) => {
    while (wave < percents.length - 1 && i >= Math.ceil((percents[wave] / 100) * ordered.length)) wave++;
    out.set(id, wave);
  });
  return out;
}
