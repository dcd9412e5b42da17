#!/usr/bin/env node
// Runs the TypeScript command line with the tsx loader (a runtime dependency)
// and the server's Node flags (node-flags.js), passing signals on so a
// graceful stop still happens.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SERVER_NODE_FLAGS } from './node-flags.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = [
  ...SERVER_NODE_FLAGS,
  '--import',
  import.meta.resolve('tsx'),
  join(root, 'server', 'cli.ts'),
  ...process.argv.slice(2),
];
const child = spawn(process.execPath, args, { stdio: 'inherit' });
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
