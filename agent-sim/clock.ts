// Time for the agent comes only from here, so tests can run hours of terminal
// life in milliseconds (manualClock) while the CLI uses the wall clock.

export type TimerHandle = { readonly id: number };

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
}

let nextHandleId = 1;

/** The wall clock with Node timers. */
export function realClock(): Clock {
  const live = new Map<number, NodeJS.Timeout>();
  return {
    now: () => Date.now(),
    setTimeout(fn, ms) {
      const handle = { id: nextHandleId++ };
      live.set(
        handle.id,
        setTimeout(
          () => {
            live.delete(handle.id);
            fn();
          },
          Math.max(0, ms),
        ),
      );
      return handle;
    },
    clearTimeout(handle) {
      if (!handle) return;
      const t = live.get(handle.id);
      if (t) clearTimeout(t);
      live.delete(handle.id);
    },
  };
}

export interface ManualClock extends Clock {
  /** Moves time forward, firing due timers in order and letting async work settle between them. */
  advance(ms: number): Promise<void>;
  /** Number of timers waiting. */
  pending(): number;
}

interface ManualTimer {
  id: number;
  at: number;
  fn: () => void;
}

/** A clock that only moves when told to. */
export function manualClock(startMs = Date.UTC(2026, 0, 5, 9, 0, 0)): ManualClock {
  let now = startMs;
  let timers: ManualTimer[] = [];
  const settle = () => new Promise<void>((resolve) => setImmediate(resolve));
  return {
    now: () => now,
    setTimeout(fn, ms) {
      const timer = { id: nextHandleId++, at: now + Math.max(0, ms), fn };
      timers.push(timer);
      return { id: timer.id };
    },
    clearTimeout(handle) {
      if (handle) timers = timers.filter((t) => t.id !== handle.id);
    },
    async advance(ms) {
      const target = now + ms;
      for (;;) {
        await settle();
        const due = timers.filter((t) => t.at <= target).sort((a, b) => a.at - b.at || a.id - b.id)[0];
        if (!due) break;
        timers = timers.filter((t) => t !== due);
        now = Math.max(now, due.at);
        due.fn();
      }
      now = target;
      await settle();
    },
    pending: () => timers.length,
  };
}

/** Parses "30s", "5m", "2h", "1500ms" or a bare number of seconds into milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m) throw new Error(`not a duration: ${text} (use e.g. 30s, 5m, 2h)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] ?? 's'] ?? 1000;
  return Math.round(Number(m[1]) * unit);
}
