// The warranty decision: free while the terminal is in warranty and no damage
// is recorded; billable otherwise. Always said with its reason.
export interface WarrantyDecision {
  billable: boolean;
  reason: string;
}

export function decideWarranty(input: {
  warrantyUntil: string | null;
  at: Date;
  damage: boolean;
  damageNote?: string | null;
}): WarrantyDecision {
  const day = input.at.toISOString().slice(0, 10);
  if (input.damage) {
    const note = input.damageNote ? ` (${input.damageNote})` : '';
    return { billable: true, reason: `billable: damage recorded${note}; the warranty does not cover damage` };
  }
  if (!input.warrantyUntil) return { billable: true, reason: 'billable: no warranty on record for this terminal' };
  if (day <= input.warrantyUntil)
    return { billable: false, reason: `free: in warranty until ${input.warrantyUntil}, no damage recorded` };
  return { billable: true, reason: `billable: warranty ended on ${input.warrantyUntil}` };
}
