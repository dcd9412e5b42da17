// Figures read off the server's Prometheus /metrics: one scrape before the
// rollout and one after, histograms compared bucket by bucket.

/** The server's /metrics text. */
export async function scrape(base: string): Promise<string> {
  return (await fetch(`${base}/metrics`)).text();
}

/** Cumulative bucket counts of a histogram in a scrape. */
export function histogram(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of text.matchAll(new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\d+)`, 'gm')))
    out.set(m[1], Number(m[2]));
  return out;
}

/** A single-valued metric of a scrape (NaN when absent). */
export function value(text: string, name: string): number {
  return Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1]);
}

/** The sum of every series of a counter (all label values), NaN when absent. */
export function total(text: string, name: string): number {
  let sum = NaN;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)`, 'gm')))
    sum = (Number.isNaN(sum) ? 0 : sum) + Number(m[1]);
  return sum;
}

/** "p50 ≤ 0.05 s, p90 ≤ 0.1 s, p99 ≤ 2.5 s (n 5000)" from the bucket counts gathered between two scrapes. */
export function quantiles(before: Map<string, number>, after: Map<string, number>): string {
  const buckets = [...after].map(([le, n]) => [le, n - (before.get(le) ?? 0)] as const);
  const total = buckets.find(([le]) => le === '+Inf')?.[1] ?? 0;
  if (total === 0) return 'none';
  const at = (q: number) => buckets.find(([, n]) => n >= q * total)?.[0] ?? '+Inf';
  return `p50 ≤ ${at(0.5)} s, p90 ≤ ${at(0.9)} s, p99 ≤ ${at(0.99)} s (n ${total})`;
}
