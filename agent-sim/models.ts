// Built-in terminal models (docs/agent-sim.md, "Models"). What a model has decides what its
// heartbeat reports: a countertop on mains sends no battery, a reader no printer.
import type { NET_TYPES } from '../protocol/index.ts';

export type NetType = (typeof NET_TYPES)[number];

export interface ModelSpec {
  name: string;
  description: string;
  battery: { capacityMinutes: number; chargePctPerHour: number } | null;
  printer: boolean;
  /** Network types the model may use; the first is the most common. */
  nets: readonly NetType[];
  /** Payments per trading hour at an average merchant. */
  txPerHour: number;
  /** Share of payments by swipe, chip and tap. */
  readerMix: { swipe: number; chip: number; tap: number };
  geo: boolean;
  storageMb: number;
}

export const MODELS: Readonly<Record<string, ModelSpec>> = {
  T1: {
    name: 'T1',
    description: 'handheld: battery, LTE, printer',
    battery: { capacityMinutes: 14 * 60, chargePctPerHour: 35 },
    printer: true,
    nets: ['lte', 'wifi', '3g'],
    txPerHour: 18,
    readerMix: { swipe: 0.1, chip: 0.45, tap: 0.45 },
    geo: true,
    storageMb: 8_192,
  },
  T2: {
    name: 'T2',
    description: 'countertop: mains, ethernet, printer',
    battery: null,
    printer: true,
    nets: ['ethernet', 'wifi'],
    txPerHour: 30,
    readerMix: { swipe: 0.15, chip: 0.5, tap: 0.35 },
    geo: false,
    storageMb: 16_384,
  },
  T3: {
    name: 'T3',
    description: 'mobile card reader: battery, Bluetooth/LTE, no printer',
    battery: { capacityMinutes: 10 * 60, chargePctPerHour: 50 },
    printer: false,
    nets: ['bluetooth', 'lte'],
    txPerHour: 12,
    readerMix: { swipe: 0.05, chip: 0.35, tap: 0.6 },
    geo: true,
    storageMb: 2_048,
  },
};

export const MODEL_NAMES = Object.keys(MODELS);

export function modelSpec(name: string): ModelSpec {
  const spec = MODELS[name];
  if (!spec) throw new Error(`unknown model ${name} (known: ${MODEL_NAMES.join(', ')})`);
  return spec;
}
