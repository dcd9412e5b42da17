// Fleet-wide counters every agent adds to: plain numbers and small maps, cheap
// enough to bump on every heartbeat of ten thousand terminals.

export class FleetCounters {
  heartbeats = 0;
  events = 0;
  connects = 0;
  disconnects = 0;
  enrolled = 0;
  reboots = 0;
  readonly commands: Record<string, number> = {};
  readonly replies: Record<string, number> = {};
  duplicateCommands = 0;
  /** OTA reports by state, and failures/refusals by error code. */
  readonly otaReports: Record<string, number> = {};
  readonly otaErrors: Record<string, number> = {};
  readonly errors: Record<string, number> = {};

  command(type: string, status: string, duplicate: boolean): void {
    if (duplicate) {
      this.duplicateCommands++;
      return;
    }
    bump(this.commands, type);
    bump(this.replies, status);
  }

  ota(state: string, code?: string): void {
    bump(this.otaReports, state);
    if (code && (state === 'failed' || state === 'rejected')) bump(this.otaErrors, code);
  }

  error(code: string): void {
    bump(this.errors, code);
  }

  toJSON(): Record<string, unknown> {
    return { ...(this as object) };
  }
}

const bump = (map: Record<string, number>, key: string): void => {
  map[key] = (map[key] ?? 0) + 1;
};

/** At most `n` tasks at once: enrolment of thousands of terminals must not flood the server. */
export class Limiter {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly n: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.n) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await task();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}
