// Files of a staged backup: copied (hard-linked when DATA_DIR and the stage
// share a file system) with their size and SHA-256.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, copyFile, link, mkdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';

export async function sha256File(path: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { bytes, sha256: hash.digest('hex') };
}

export async function placeFile(from: string, to: string, mode?: number): Promise<void> {
  await mkdir(dirname(to), { recursive: true });
  if (mode === undefined) {
    try {
      await link(from, to);
      return;
    } catch {
      /* another file system: copy */
    }
  }
  await copyFile(from, to);
  if (mode !== undefined) await chmod(to, mode);
}

export async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
