// The vitals of one terminal over simulated time: payments while its merchant
// trades, paper and reader use, battery drain and overnight charge with slow
// wear, temperature, signal, storage growth. `--speed` only changes how much
// simulated time one heartbeat covers, so trends show in minutes.
import type { DeviceEvent, Heartbeat } from '../protocol/index.ts';
import { isTrading, localTime, type SimMerchant } from './merchants.ts';
import type { ModelSpec, NetType } from './models.ts';
import type { TerminalProfile } from './profiles.ts';
import { between, chance, normalish, poisson, type Rng } from './rng.ts';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** Longest stretch simulated in one go, so opening and closing times are not skipped over. */
const MAX_STEP_MS = 15 * MINUTE;
const PAPER_ROLL_LINES = 1_500;
const LINES_PER_RECEIPT = 14;

export type Vitals = Pick<Heartbeat, 'battery' | 'printer' | 'reader' | 'net' | 'sys' | 'security' | 'tx' | 'geo'>;
type PrinterState = NonNullable<NonNullable<Heartbeat['printer']>['state']>;
export type VitalsEvent = Omit<DeviceEvent, 'v' | 'ts'>;

interface Counters {
  swipeOk: number;
  swipeErr: number;
  chipOk: number;
  chipErr: number;
  tapOk: number;
  tapErr: number;
  tx: number;
  txFailed: number;
}
const zeroCounters = (): Counters => ({
  swipeOk: 0,
  swipeErr: 0,
  chipOk: 0,
  chipErr: 0,
  tapOk: 0,
  tapErr: 0,
  tx: 0,
  txFailed: 0,
});

export interface VitalsInit {
  model: ModelSpec;
  merchant: SimMerchant;
  profile: TerminalProfile;
  rng: Rng;
  /** Simulated time at start (epoch ms). */
  startMs: number;
}

export class VitalsModel {
  simNow: number;
  trading = false;
  readonly netType: NetType;
  batteryPct = 100;
  charging = false;
  batteryHealthPct: number;
  cycles: number;
  printerState: PrinterState = 'ok';
  paperLines: number;
  linesPrinted = 0;
  /** Simulated time when a jam is cleared or paper is refilled by staff. */
  private printerFixAt = 0;
  readerUses: number;
  storageUsedMb: number;
  tamper = false;
  bootAt: number;
  patchLevel: string;
  private counters = zeroCounters();
  private events: VitalsEvent[] = [];
  private readonly signalBase: number;
  private readonly busyness: number;
  private readonly started: number;

  constructor(private readonly init: VitalsInit) {
    const { model, rng, startMs, profile } = init;
    this.simNow = this.bootAt = this.started = startMs;
    this.netType =
      rng() < 0.75 ? model.nets[0] : (model.nets[1 + Math.floor(rng() * (model.nets.length - 1))] ?? model.nets[0]);
    this.cycles = Math.floor(between(rng, 0, 700));
    this.batteryHealthPct = clamp(100 - this.cycles * 0.02 - between(rng, 0, 3), 50, 100);
    this.batteryPct = Math.round(between(rng, 40, 100));
    this.paperLines = Math.round(between(rng, 0.3, 1) * PAPER_ROLL_LINES);
    this.readerUses = Math.floor(between(rng, 0, 20_000));
    this.storageUsedMb = model.storageMb * between(rng, 0.2, 0.5);
    this.signalBase = signalBaseFor(this.netType, rng) - (profile.flakyNetwork ? 15 : 0);
    this.busyness = between(rng, 0.5, 1.5);
    this.patchLevel = new Date(startMs - between(rng, 20, 200) * DAY).toISOString().slice(0, 10);
  }

  /** Moves simulated time forward by `dtMs`; returns a reboot reason when the terminal must restart. */
  advance(dtMs: number): string | null {
    let reboot: string | null = null;
    for (let left = Math.max(0, dtMs); left > 0; left -= MAX_STEP_MS) {
      const step = Math.min(left, MAX_STEP_MS);
      this.simNow += step;
      reboot = this.step(step) ?? reboot;
    }
    return reboot;
  }

  private step(dt: number): string | null {
    const { merchant, profile, rng } = this.init;
    this.trading = isTrading(merchant.tradingHours, localTime(merchant.timezone, this.simNow));
    if (this.trading) this.trade(dt);
    this.fixPrinter();
    this.storageUsedMb += (dt / DAY) * 2;
    if (this.storageFreePct() < 8) this.rotateLogs();
    if (profile.tamperAfterMs !== null && !this.tamper && this.simNow - this.started >= profile.tamperAfterMs) {
      this.tamper = true;
      this.events.push({ type: 'tamper', severity: 'critical', data: { sensor: 'case_open' } });
    }
    const batteryReboot = this.runBattery(dt);
    if (batteryReboot) return batteryReboot;
    // Rare spontaneous restarts: about one per two months of trading life.
    if (chance(rng, dt / (60 * DAY)))
      return rng() < 0.5 ? 'watchdog' : this.init.model.battery ? 'kernel_panic' : 'power_loss';
    return null;
  }

  private trade(dt: number): void {
    const { model, rng } = this.init;
    const n = poisson(rng, model.txPerHour * this.busyness * (dt / HOUR));
    for (let i = 0; i < n; i++) this.payment();
    this.storageUsedMb += n * 0.004;
  }

  private payment(): void {
    const { model, profile, rng } = this.init;
    const c = this.counters;
    this.readerUses++;
    // Reader wear: error rates climb with use on a worn head.
    const wear = profile.readerWear ? Math.min(0.45, 0.02 + this.readerUses / 40_000) : 0;
    const r = rng();
    let ok: boolean;
    if (r < model.readerMix.swipe) {
      ok = !chance(rng, 0.03 + wear * 1.5);
      if (ok) c.swipeOk++;
      else c.swipeErr++;
    } else if (r < model.readerMix.swipe + model.readerMix.chip) {
      ok = !chance(rng, 0.01 + wear);
      if (ok) c.chipOk++;
      else c.chipErr++;
    } else {
      ok = !chance(rng, 0.01 + wear / 3);
      if (ok) c.tapOk++;
      else c.tapErr++;
    }
    c.tx++;
    if (!ok || chance(rng, profile.flakyNetwork ? 0.05 : 0.01)) c.txFailed++;
    if (model.printer && ok) this.print();
  }

  private print(): void {
    const { profile, rng } = this.init;
    if (this.printerState !== 'ok' && this.printerState !== 'paper_low') return;
    this.linesPrinted += LINES_PER_RECEIPT;
    this.paperLines -= LINES_PER_RECEIPT;
    if (chance(rng, profile.failingPrinter ? 0.02 : 0.0003)) {
      this.setPrinter('jam', between(rng, 10, 60) * MINUTE, { type: 'printer_jam', severity: 'warning' });
    } else if (this.paperLines <= 0) {
      this.paperLines = 0;
      // Staff on a failing-printer site are slow to notice; hours without receipts.
      const delay = between(rng, 15, 90) * MINUTE * (profile.failingPrinter ? 4 : 1);
      this.setPrinter('no_paper', delay, { type: 'printer_no_paper', severity: 'warning' });
    } else if (this.paperLines < PAPER_ROLL_LINES * 0.1) {
      this.printerState = 'paper_low';
    }
  }

  private setPrinter(state: PrinterState, fixAfterMs: number, event: VitalsEvent): void {
    this.printerState = state;
    this.printerFixAt = this.simNow + fixAfterMs;
    this.events.push(event);
  }

  private fixPrinter(): void {
    if ((this.printerState === 'jam' || this.printerState === 'no_paper') && this.simNow >= this.printerFixAt) {
      if (this.printerState === 'no_paper') this.paperLines = PAPER_ROLL_LINES;
      this.printerState = this.paperLines < PAPER_ROLL_LINES * 0.1 ? 'paper_low' : 'ok';
    }
  }

  private runBattery(dt: number): string | null {
    const spec = this.init.model.battery;
    if (!spec) return null;
    const { profile, rng } = this.init;
    const minutes = dt / MINUTE;
    // Docked outside trading hours, and by a careful merchant when nearly empty.
    this.charging = !this.trading || (this.batteryPct < 12 && chance(rng, 0.3));
    if (this.charging) {
      this.batteryPct = Math.min(100, this.batteryPct + (spec.chargePctPerHour * minutes) / 60);
      return null;
    }
    const drainFactor = (profile.degradingBattery ? 1.6 : 1) * (100 / this.batteryHealthPct);
    const drained = (100 / spec.capacityMinutes) * minutes * drainFactor * (this.trading ? 1 : 0.15);
    const before = this.batteryPct;
    this.batteryPct = Math.max(0, this.batteryPct - drained);
    this.cycles += drained / 100;
    const perCycle = profile.degradingBattery ? 0.25 : 0.02;
    this.batteryHealthPct = clamp(
      this.batteryHealthPct - (drained / 100) * perCycle - (profile.degradingBattery ? (minutes / (24 * 60)) * 0.3 : 0),
      20,
      100,
    );
    if (before >= 15 && this.batteryPct < 15)
      this.events.push({ type: 'low_battery', severity: 'warning', data: { pct: Math.round(this.batteryPct) } });
    if (this.batteryPct <= 0) {
      this.batteryPct = 3;
      this.charging = true;
      return 'battery_depleted';
    }
    return null;
  }

  private rotateLogs(): void {
    this.storageUsedMb *= 0.8;
    this.events.push({ type: 'storage_cleanup', severity: 'info' });
  }

  storageFreePct(): number {
    return clamp(100 * (1 - this.storageUsedMb / this.init.model.storageMb), 0, 100);
  }

  onBoot(): void {
    this.bootAt = this.simNow;
  }

  /** Events raised since the last call (tamper, printer_jam, low_battery…). */
  drainEvents(): VitalsEvent[] {
    const out = this.events;
    this.events = [];
    return out;
  }

  /** The vitals part of a heartbeat; reader and tx counts are since the previous snapshot. */
  snapshot(): Vitals {
    const { model, merchant, profile, rng } = this.init;
    const c = this.counters;
    this.counters = zeroCounters();
    const ambient = 22 + normalish(rng, 0, 3);
    const v: Vitals = {
      reader: {
        swipeOk: c.swipeOk,
        swipeErr: c.swipeErr,
        chipOk: c.chipOk,
        chipErr: c.chipErr,
        tapOk: c.tapOk,
        tapErr: c.tapErr,
      },
      tx: { count: c.tx, failed: c.txFailed, queued: profile.flakyNetwork ? poisson(rng, 0.5) : 0 },
      net: this.netVitals(),
      sys: {
        cpuPct: round1(clamp((this.trading ? 25 : 5) + normalish(rng, 0, 8), 1, 100)),
        memFreePct: round1(clamp(55 + normalish(rng, 0, 10), 5, 95)),
        storageFreePct: round1(this.storageFreePct()),
        uptimeS: Math.floor((this.simNow - this.bootAt) / 1000),
        tempC: round1(ambient + (this.trading ? 8 : 2)),
      },
      security: { tamper: this.tamper, patchLevel: this.patchLevel },
    };
    if (model.battery) {
      v.battery = {
        pct: Math.round(this.batteryPct),
        charging: this.charging,
        healthPct: round1(this.batteryHealthPct),
        cycles: Math.floor(this.cycles),
        tempC: round1(ambient + (this.charging ? 6 : 2) + (profile.degradingBattery ? 5 : 0)),
      };
    }
    if (model.printer) {
      v.printer = {
        state: this.printerState,
        headTempC: round1(ambient + 4 + Math.min(30, c.tx * 0.8)),
        linesPrinted: this.linesPrinted,
      };
    }
    if (model.geo) v.geo = { lat: merchant.lat, lon: merchant.lon };
    return v;
  }

  private netVitals(): NonNullable<Vitals['net']> {
    const { profile, rng } = this.init;
    const latencyBase = { ethernet: 8, wifi: 25, lte: 70, '3g': 180, bluetooth: 45 }[this.netType];
    const spike = profile.flakyNetwork && chance(rng, 0.3) ? between(rng, 3, 20) : 1;
    const net: NonNullable<Vitals['net']> = {
      type: this.netType,
      latencyMs: Math.round(latencyBase * between(rng, 0.7, 1.5) * spike),
    };
    if (this.netType !== 'ethernet')
      net.signalDbm = Math.round(clamp(this.signalBase + normalish(rng, 0, profile.flakyNetwork ? 12 : 4), -140, -20));
    return net;
  }
}

function signalBaseFor(type: NetType, rng: Rng): number {
  const [lo, hi] = { ethernet: [0, 0], wifi: [-75, -45], lte: [-110, -75], '3g': [-110, -85], bluetooth: [-85, -50] }[
    type
  ];
  return between(rng, lo, hi);
}

const clamp = (n: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, n));
const round1 = (n: number): number => Math.round(n * 10) / 10;
