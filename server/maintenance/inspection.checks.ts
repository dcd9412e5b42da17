// Periodic inspection checks, pure: hardware (battery, printer, reader),
// software (versions against the newest released or reported, security patch age) and
// network (presence, signal, latency), each pass / attention / fail.
import semver from 'semver';
import type { Heartbeat } from '../../protocol/messages.ts';

export const VERDICTS = ['pass', 'attention', 'fail'] as const;
export type Verdict = (typeof VERDICTS)[number];

/** The vitals a terminal last reported (its latest heartbeat's parts). */
export type Vitals = Partial<Pick<Heartbeat, 'battery' | 'printer' | 'net' | 'security'>>;

export interface Check {
  verdict: Verdict;
  detail: string;
}

export interface InspectionInput {
  model: string;
  firmware: string | null;
  apps: Record<string, string>;
  vitals: Vitals | null;
  readerErrorRate: number | null;
  presence: string | null;
  now: Date;
}

export interface Newest {
  firmware: Map<string, string>;
  apps: Map<string, string>;
}

const worse = (a: Verdict, b: Verdict): Verdict => (VERDICTS.indexOf(a) >= VERDICTS.indexOf(b) ? a : b);
const check = (verdict: Verdict, detail: string): Check => ({ verdict, detail });

function battery(v: Vitals['battery']): Check {
  if (!v) return check('pass', 'no battery (mains powered)');
  if (typeof v.healthPct === 'number' && v.healthPct < 60)
    return check('fail', `battery health ${v.healthPct} % (replace below 60 %)`);
  if (typeof v.healthPct === 'number' && v.healthPct < 70) return check('attention', `battery health ${v.healthPct} %`);
  return check('pass', `battery health ${v.healthPct ?? '?'} %, charge ${v.pct ?? '?'} %`);
}

function printer(v: Vitals['printer']): Check {
  if (!v) return check('pass', 'no printer');
  if (v.state === 'jam' || v.state === 'fault' || v.state === 'overheat') return check('fail', `printer ${v.state}`);
  if (v.state === 'no_paper' || v.state === 'paper_low' || v.state === 'cover_open')
    return check('attention', `printer ${v.state}`);
  return check('pass', `printer ${v.state ?? 'ok'}`);
}

function reader(rate: number | null): Check {
  if (rate === null) return check('pass', 'no recent card reads');
  const pct = Math.round(rate * 1000) / 10;
  if (rate > 0.2) return check('fail', `card read errors ${pct} %`);
  if (rate > 0.1) return check('attention', `card read errors ${pct} %`);
  return check('pass', `card read errors ${pct} %`);
}

function software(i: InspectionInput, newest: Newest): Check {
  const behind: string[] = [];
  const top = newest.firmware.get(i.model);
  if (i.firmware && top && semver.lt(i.firmware, top)) behind.push(`firmware ${i.firmware} < ${top}`);
  for (const [name, version] of Object.entries(i.apps)) {
    const latest = newest.apps.get(name);
    if (latest && semver.valid(version) && semver.lt(version, latest)) behind.push(`${name} ${version} < ${latest}`);
  }
  return behind.length
    ? check('attention', behind.join('; '))
    : check('pass', `firmware ${i.firmware ?? '?'} is the newest released`);
}

function patch(level: string | undefined, now: Date): Check {
  if (!level) return check('attention', 'security patch level not reported');
  const days = Math.floor((now.getTime() - Date.parse(`${level}T00:00:00Z`)) / 86_400_000);
  if (days > 90) return check('fail', `security patch ${level} is ${days} days old (limit 90)`);
  if (days > 60) return check('attention', `security patch ${level} is ${days} days old`);
  return check('pass', `security patch ${level}`);
}

function network(i: InspectionInput): Check {
  if (!i.presence) return check('attention', 'never heard from');
  if (i.presence === 'offline' || i.presence === 'missing') return check('fail', `terminal ${i.presence}`);
  const net = i.vitals?.net;
  const notes: string[] = [];
  if (typeof net?.signalDbm === 'number' && net.signalDbm < -105) notes.push(`weak signal ${net.signalDbm} dBm`);
  if (typeof net?.latencyMs === 'number' && net.latencyMs > 1000) notes.push(`latency ${net.latencyMs} ms`);
  if (i.presence === 'late') notes.push('heartbeat late');
  return notes.length
    ? check('attention', notes.join('; '))
    : check('pass', `${i.presence}, ${net?.type ?? 'network'} ${net?.signalDbm ?? ''}`.trim());
}

export function inspectDevice(i: InspectionInput, newest: Newest): { verdict: Verdict; checks: Record<string, Check> } {
  const v: Vitals = i.vitals ?? {};
  const checks = {
    battery: battery(v.battery),
    printer: printer(v.printer),
    reader: reader(i.readerErrorRate),
    software: software(i, newest),
    securityPatch: patch(v.security?.patchLevel, i.now),
    network: network(i),
  };
  return { verdict: Object.values(checks).reduce<Verdict>((acc, c) => worse(acc, c.verdict), 'pass'), checks };
}

function bump(m: Map<string, string>, k: string, v: string | null): void {
  if (!v || !semver.valid(v)) return;
  const cur = m.get(k);
  if (!cur || semver.gt(v, cur)) m.set(k, v);
}

/**
 * The newest firmware per model and the newest version of each app: the
 * newest released in the artifact catalogue (firmware for the models its
 * manifest lists; apps for any model) or, when a terminal reports something
 * newer than the catalogue holds (installed outside posfleet), that.
 */
export function newestVersions(
  devices: { model: string; firmware: string | null; apps: Record<string, string> }[],
  released: { component: string; version: string; models: string[] }[] = [],
): Newest {
  const firmware = new Map<string, string>();
  const apps = new Map<string, string>();
  for (const a of released) {
    if (a.component === 'firmware') for (const model of a.models) bump(firmware, model, a.version);
    else if (a.component.startsWith('app:')) bump(apps, a.component.slice(4), a.version);
  }
  for (const d of devices) {
    bump(firmware, d.model, d.firmware);
    for (const [name, version] of Object.entries(d.apps)) bump(apps, name, version);
  }
  return { firmware, apps };
}
