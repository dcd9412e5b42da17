// CPU seconds and memory of processes, from /proc (Linux).
import { readdirSync, readFileSync } from 'node:fs';

const TICKS = 100; // USER_HZ on Linux

/** utime + stime of one process in seconds; 0 once it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS;
  } catch {
    return 0;
  }
}

/** User and system (kernel) CPU seconds of one process; zeros once it is gone. */
export function cpuSplit(pid: number): { user: number; system: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(fields[11]) / TICKS, system: Number(fields[12]) / TICKS };
  } catch {
    return { user: 0, system: 0 };
  }
}

/** A field of /proc/<pid>/status in MiB (VmRSS now, VmHWM peak). */
export function memMib(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * CPU seconds by pid of the PostgreSQL backends serving `database` (their title is
 * "postgres: user database host(port) …"), or every database a predicate accepts;
 * shared processes such as the WAL writer are not counted, nor are other databases' backends.
 */
export function postgresCpu(database: string | ((name: string) => boolean)): Map<number, number> {
  const wanted = typeof database === 'string' ? (name: string) => name === database : database;
  const out = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/comm`, 'utf8').trim() !== 'postgres') continue;
      const title = readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (!title.split(' ').some(wanted)) continue;
      out.set(Number(name), cpuSeconds(Number(name)));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** CPU the postgres processes used between two snapshots (backends that exited meanwhile are missed). */
export function postgresCpuSince(before: Map<number, number>, after: Map<number, number>): number {
  let sum = 0;
  for (const [pid, s] of after) sum += s - (before.get(pid) ?? 0);
  return sum;
}

/** The whole machine's CPU seconds so far (all CPUs), from the first line of /proc/stat. */
export interface MachineCpu {
  /** user, nice and system: processes, this machine's and everyone's. */
  tasks: number;
  /** Interrupts and softirqs: mostly network work no process is charged for. */
  irq: number;
  /** Time the hypervisor gave this machine's CPUs to someone else. */
  steal: number;
}

export function machineCpu(): MachineCpu {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = cpu;
  return { tasks: (user + nice + system) / TICKS, irq: (irq + softirq) / TICKS, steal: (steal ?? 0) / TICKS };
}

/** Busy CPU seconds of the whole machine (all CPUs, everything but idle and iowait). */
export function machineBusySeconds(): number {
  const m = machineCpu();
  return m.tasks + m.irq + m.steal;
}

/**
 * CPU seconds of a process and all its descendants alive now, each with the CPU of
 * the children it has already reaped (cutime + cstime): the difference of two
 * readings is what the tree used between them, processes that came and went included.
 */
export function treeCpuSeconds(root: number): number {
  const procs = new Map<number, { ppid: number; cpu: number }>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      procs.set(Number(name), {
        ppid: Number(f[1]),
        cpu: (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / TICKS,
      });
    } catch {
      // gone meanwhile
    }
  }
  let sum = 0;
  for (const [pid, p] of procs) {
    for (let at: number | undefined = pid, hops = 0; at !== undefined && at > 1 && hops < 64; hops++) {
      if (at === root) {
        sum += p.cpu;
        break;
      }
      at = procs.get(at)?.ppid;
    }
  }
  return sum;
}

/**
 * System calls of the read and write families a process made so far (syscr + syscw of
 * /proc/<pid>/io: socket reads and writes, eventfd wake-ups of worker threads), and its
 * context switches (all its threads alive now): work counts that do not depend on the
 * machine's speed, unlike the CPU time they cost.
 */
export function syscallCounts(pid: number): { readWrite: number; switches: number } {
  let readWrite = 0;
  let switches = 0;
  try {
    const io = readFileSync(`/proc/${pid}/io`, 'utf8');
    readWrite = Number(/syscr: (\d+)/.exec(io)?.[1] ?? 0) + Number(/syscw: (\d+)/.exec(io)?.[1] ?? 0);
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const status = readFileSync(`/proc/${pid}/task/${task}/status`, 'utf8');
      for (const m of status.matchAll(/ctxt_switches:\s+(\d+)/g)) switches += Number(m[1]);
    }
  } catch {
    // gone
  }
  return { readWrite, switches };
}

export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = Float64Array.from(xs).sort();
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}
