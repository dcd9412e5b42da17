// DATA_DIR checks made before anything is written there: the directory is made
// one level at a time (Node's recursive mkdir spins forever on a path such as
// /proc/x), proven writable, and — for the embedded database — locked, so a
// second server on the same directory is refused before it opens PGlite.
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

export const LOCK_FILE = 'posfleet.lock';

export class DataDirError extends Error {}

function reason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const words: Record<string, string> = {
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    EROFS: 'read-only file system',
    ENOTDIR: 'a part of the path is a file',
    ENOENT: 'the path cannot be created',
    ENOSPC: 'no space left on the device',
    EEXIST: 'exists and is not a directory',
  };
  return (e.code && words[e.code]) ?? e.message;
}

/** mkdir -p, one level at a time; every existing level must be a directory. */
export function makeDirs(dir: string): void {
  const target = resolve(dir);
  const missing: string[] = [];
  for (let at = target; ; at = dirname(at)) {
    let isDir: boolean;
    try {
      isDir = statSync(at).isDirectory();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      missing.unshift(at);
      if (dirname(at) === at) break;
      continue;
    }
    if (!isDir) throw Object.assign(new Error(`${at} is not a directory`), { code: 'ENOTDIR' });
    break;
  }
  for (const level of missing) mkdirSync(level);
}

function alive(pid: number): boolean {
  if (pid === process.pid) return false; // a restarted container reuses its pid: that lock is ours, left by a crash
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface DataDirLease {
  /** Removes the lock (when one was taken). */
  release(): void;
}

/**
 * Makes DATA_DIR if needed and proves it writable. With `lock`, takes
 * DATA_DIR/posfleet.lock (the process id inside) and refuses when a live
 * process holds it; a lock left by a process that is gone is taken over.
 */
export function prepareDataDir(dir: string, opts: { lock: boolean; purpose?: string }): DataDirLease {
  try {
    makeDirs(dir);
  } catch (err) {
    throw new DataDirError(`DATA_DIR ${dir} is not usable: ${reason(err)}`);
  }
  const file = join(dir, opts.lock ? LOCK_FILE : `.write-probe-${process.pid}`);
  for (let attempt = 0; ; attempt++) {
    let fd: number;
    try {
      fd = openSync(file, 'wx', 0o600);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' && opts.lock && attempt === 0) {
        const holder = Number.parseInt(readFileSync(file, 'utf8'), 10);
        if (Number.isInteger(holder) && holder > 0 && alive(holder))
          throw new DataDirError(
            `DATA_DIR ${dir} is in use by another posfleet (pid ${holder}); stop it first, or give this one its own DATA_DIR`,
          );
        rmSync(file, { force: true }); // stale: its process is gone
        continue;
      }
      throw new DataDirError(`DATA_DIR ${dir} is not writable: ${reason(err)}`);
    }
    try {
      writeSync(fd, `${process.pid}\n${opts.purpose ?? 'serve'}\n`);
    } finally {
      closeSync(fd);
    }
    if (!opts.lock) {
      rmSync(file, { force: true });
      return { release: () => undefined };
    }
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        rmSync(file, { force: true });
      },
    };
  }
}
