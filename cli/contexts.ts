// Where `posfleet login` keeps servers and keys: $XDG_CONFIG_HOME/posfleet/config.json
// (else ~/.config/posfleet/config.json), mode 0600 in a 0700 directory. Several
// named contexts; one is current. A key is never printed or logged.
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { CliError, EXIT } from './exit-codes.ts';
import type { CliIo } from './io.ts';

const contextSchema = z.object({ url: z.string().url(), token: z.string().min(1) });
const fileSchema = z.object({
  current: z.string().nullable().default(null),
  contexts: z.record(z.string(), contextSchema).default({}),
});
export type ContextFile = z.infer<typeof fileSchema>;
export interface Context {
  name: string;
  url: string;
  token: string;
}

export function configPath(env: CliIo['env']): string {
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
  return join(base, 'posfleet', 'config.json');
}

export function readContexts(env: CliIo['env']): ContextFile {
  const file = configPath(env);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { current: null, contexts: {} };
    throw new CliError(EXIT.failed, `cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    return fileSchema.parse(JSON.parse(text));
  } catch {
    throw new CliError(EXIT.failed, `${file} is not a posfleet config file; remove it and log in again`);
  }
}

export function writeContexts(env: CliIo['env'], data: ContextFile): string {
  const file = configPath(env);
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(data, null, 2)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
  return file;
}

/**
 * The server and key a command uses: --context NAME, else the current
 * context; POSFLEET_URL and POSFLEET_TOKEN (for CI) override both.
 */
export function resolveContext(env: CliIo['env'], name: string | undefined): Context {
  const data = readContexts(env);
  const chosen = name ?? data.current ?? undefined;
  const stored = chosen ? data.contexts[chosen] : undefined;
  if (name && !stored && !(env.POSFLEET_URL && env.POSFLEET_TOKEN))
    throw new CliError(EXIT.auth, `no context named "${name}"; see posfleet context list`);
  const url = env.POSFLEET_URL || stored?.url;
  const token = env.POSFLEET_TOKEN || stored?.token;
  if (!url || !token)
    throw new CliError(
      EXIT.auth,
      'not logged in: run posfleet login --url URL (or set POSFLEET_URL and POSFLEET_TOKEN)',
    );
  return { name: chosen ?? 'env', url: url.replace(/\/+$/, ''), token };
}
