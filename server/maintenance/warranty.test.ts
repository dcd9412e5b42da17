import { describe, expect, it } from 'vitest';
import { decideWarranty } from './warranty.ts';

describe('warranty decision', () => {
  const at = new Date('2026-03-01T10:00:00Z');
  it('is free in warranty without damage, and says why', () => {
    expect(decideWarranty({ warrantyUntil: '2026-03-01', at, damage: false })).toEqual({
      billable: false,
      reason: expect.stringContaining('in warranty until 2026-03-01'),
    });
  });
  it('is billable out of warranty, without a warranty date, or with damage', () => {
    expect(decideWarranty({ warrantyUntil: '2026-02-28', at, damage: false }).reason).toContain(
      'warranty ended on 2026-02-28',
    );
    expect(decideWarranty({ warrantyUntil: null, at, damage: false }).billable).toBe(true);
    const dmg = decideWarranty({
      warrantyUntil: '2027-01-01',
      at,
      damage: true,
      damageNote: 'dropped, screen cracked',
    });
    expect(dmg.billable).toBe(true);
    expect(dmg.reason).toContain('dropped, screen cracked');
  });
});
