import { describe, expect, it } from 'vitest';
import { AGENT_STATES, AGENT_TRANSITIONS, canTransition, isFinal, transition } from './states.ts';

describe('terminal agent state machine', () => {
  it('walks every transition in the table and refuses the rest', () => {
    for (const from of AGENT_STATES) {
      for (const to of AGENT_STATES) {
        const listed = (AGENT_TRANSITIONS[from] as readonly string[]).includes(to);
        expect(canTransition(from, to), `${from} → ${to}`).toBe(listed);
      }
    }
    expect(canTransition('stopped', 'connecting')).toBe(false);
    expect(canTransition('offline', 'online')).toBe(false);
    expect(canTransition('rebooting', 'failed')).toBe(false);
    expect(canTransition('idle', 'rebooting')).toBe(false);
  });

  it('moves along the table, stays put without a move, and throws on a move the table does not list', () => {
    for (const from of AGENT_STATES) {
      for (const to of AGENT_TRANSITIONS[from]) expect(transition(from, to, 't1')).toBe(to);
    }
    expect(transition('enrolling', 'enrolling', 't1')).toBe('enrolling');
    expect(() => transition('stopped', 'online', 'T1-0001')).toThrow('T1-0001: state cannot go from stopped to online');
    expect(() => transition('offline', 'online', 't1')).toThrow(/offline to online/);
  });

  it('ends only in stopped, and every state can stop', () => {
    expect(AGENT_STATES.filter(isFinal)).toEqual(['stopped']);
    for (const from of AGENT_STATES.filter((s) => !isFinal(s))) expect(canTransition(from, 'stopped')).toBe(true);
  });

  it('reaches every state from idle, and a failed terminal can come back through a reboot', () => {
    const seen = new Set<string>(['idle']);
    const queue: string[] = ['idle'];
    while (queue.length) {
      const from = queue.shift() as keyof typeof AGENT_TRANSITIONS;
      for (const to of AGENT_TRANSITIONS[from]) {
        if (seen.has(to)) continue;
        seen.add(to);
        queue.push(to);
      }
    }
    expect([...seen].sort()).toEqual([...AGENT_STATES].sort());
    expect(canTransition('failed', 'rebooting') && canTransition('rebooting', 'enrolling')).toBe(true);
  });
});
