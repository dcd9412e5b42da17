import { describe, expect, it } from 'vitest';
import { DEVICE_STATUSES, DEVICE_TRANSITIONS, canTransition, isTerminal, mayConnect } from './lifecycle.ts';
import {
  COMMAND_STATES,
  COMMAND_TRANSITIONS,
  canTransition as commandCan,
  isTerminal as commandTerminal,
  stateForReply,
} from './commands.states.ts';

describe('device lifecycle', () => {
  it('allows exactly the transitions in its table', () => {
    for (const from of DEVICE_STATUSES) {
      for (const to of DEVICE_STATUSES) {
        expect(canTransition(from, to), `${from} → ${to}`).toBe(DEVICE_TRANSITIONS[from].includes(to));
      }
    }
    expect(canTransition('pending', 'active')).toBe(true);
    expect(canTransition('in_repair', 'suspended')).toBe(false);
  });
  it('ends only in decommissioned, reachable from every other status', () => {
    expect(DEVICE_STATUSES.filter(isTerminal)).toEqual(['decommissioned']);
    for (const s of DEVICE_STATUSES) if (s !== 'decommissioned') expect(canTransition(s, 'decommissioned')).toBe(true);
  });
  it('lets only active and in-repair terminals connect', () => {
    expect(DEVICE_STATUSES.filter(mayConnect)).toEqual(['active', 'in_repair']);
  });
});

describe('command states', () => {
  it('allows exactly the transitions in its table', () => {
    for (const from of COMMAND_STATES) {
      for (const to of COMMAND_STATES)
        expect(commandCan(from, to), `${from} → ${to}`).toBe(COMMAND_TRANSITIONS[from].includes(to));
    }
  });
  it('maps replies to states, busy staying open', () => {
    expect(stateForReply('ok')).toBe('succeeded');
    expect(stateForReply('error')).toBe('failed');
    expect(stateForReply('rejected')).toBe('rejected');
    expect(stateForReply('busy')).toBe('deferred');
    expect(commandTerminal('deferred')).toBe(false);
    expect(COMMAND_STATES.filter(commandTerminal)).toEqual(['succeeded', 'failed', 'rejected', 'expired']);
  });
});
