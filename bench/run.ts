// `npm run bench -- <name> [flags]` runs bench/<name>/run.ts; without a name it lists them.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const names = readdirSync(here, { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(join(here, d.name, 'run.ts')))
  .map((d) => d.name);
const [name, ...rest] = process.argv.slice(2);
if (!name || !names.includes(name)) {
  process.stderr.write(`usage: npm run bench -- <${names.join('|')}> [flags]\n`);
  process.exit(name ? 2 : 0);
}
const res = spawnSync(process.execPath, ['--import', 'tsx', join(here, name, 'run.ts'), ...rest], { stdio: 'inherit' });
process.exit(res.status ?? 1);
