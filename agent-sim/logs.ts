// A terminal's recent log lines, answered by `fetch_logs`. A small ring: ten
// thousand terminals in one process must not hold much each.

type Entry = [ts: number, level: 'info' | 'warn' | 'error', msg: string];

export class LogRing {
  private entries: Entry[] = [];
  private next = 0;

  constructor(private readonly capacity = 64) {}

  add(ts: number, level: Entry[1], msg: string): void {
    if (this.entries.length < this.capacity) this.entries.push([ts, level, msg]);
    else this.entries[this.next] = [ts, level, msg];
    this.next = (this.next + 1) % this.capacity;
  }

  /** The last `n` lines, oldest first. */
  lines(n = this.capacity): string[] {
    const ordered =
      this.entries.length < this.capacity
        ? this.entries
        : [...this.entries.slice(this.next), ...this.entries.slice(0, this.next)];
    return ordered
      .slice(-Math.max(0, n))
      .map(([ts, level, msg]) => `${new Date(ts).toISOString()} ${level.toUpperCase()} ${msg}`);
  }
}
