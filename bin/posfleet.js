#!/usr/bin/env node
// The `posfleet` command. `serve` runs in a child process with the server's
// Node flags (node-flags.js); every other command runs in this process. Both
// load the TypeScript sources with tsx (a runtime dependency).
//
// Signals (docs/operations.md#stopping): the server runs in a process group of
// its own, so a Ctrl-C that the terminal sends to the whole foreground group
// reaches it once, through this launcher, and not once more from each process
// of an `npm start` chain. The same signal arriving again within a second
// (npm passing on what the terminal already sent) is that one signal; a later
// one is a second Ctrl-C and stops the server at once. Should this launcher
// die without a word (SIGKILL), the server sees its IPC channel close and
// stops cleanly too.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SERVER_NODE_FLAGS } from './node-flags.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'server', 'cli.ts');
const argv = process.argv.slice(2);

if (argv[0] === 'serve' && !argv.slice(1).some((a) => a === '--help' || a === '-h')) {
  const child = spawn(process.execPath, [...SERVER_NODE_FLAGS, '--import', import.meta.resolve('tsx'), cli, ...argv], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    detached: true,
  });
  let last = { signal: '', at: 0 };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      const now = Date.now();
      if (sig === last.signal && now - last.at < 1000) return;
      last = { signal: sig, at: now };
      child.kill(sig === 'SIGHUP' ? 'SIGTERM' : sig);
    });
  }
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(cli);
}
