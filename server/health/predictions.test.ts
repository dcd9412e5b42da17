import { describe, expect, it } from 'vitest';
import { daysUntil, predictBattery, predictPrinterHead, predictReader } from './predictions.ts';

describe('maintenance predictions', () => {
  it('projects a falling battery health to the replacement point', () => {
    expect(predictBattery({ current: 70, slopePerDay: -0.5, samples: 10 }).dueInDays).toBe(20);
    expect(predictBattery({ current: 58, slopePerDay: -0.5, samples: 10 }).dueInDays).toBe(0);
    expect(predictBattery({ current: 90, slopePerDay: 0.1, samples: 10 }).dueInDays).toBeNull();
    expect(predictBattery({ current: 70, slopePerDay: -0.5, samples: 2 }).dueInDays).toBeNull();
  });
  it('projects print head wear against the model head life', () => {
    const p = predictPrinterHead('T1', { current: 2_900_000, slopePerDay: 10_000, samples: 5 });
    expect(p?.dueInDays).toBe(10);
    expect(p?.basis.wearPct).toBeCloseTo(96.7, 1);
    expect(predictPrinterHead('T3', { current: null, slopePerDay: null, samples: 0 })).toBeNull();
  });
  it('projects a rising reader error rate to the replacement rate', () => {
    expect(predictReader({ current: 0.1, slopePerDay: 0.01, samples: 5 }).dueInDays).toBeCloseTo(10);
    expect(daysUntil(0.05, -0.01, 0.2, true)).toBeNull();
  });
});
