// `posfleet restore FILE [--force]`: settings from the environment (DATA_DIR,
// DATABASE_URL, …), progress on stderr, a summary on stdout.
import type { Command } from 'commander';
import type { CliIo } from '../../cli/io.ts';
import { CliError, EXIT } from '../../cli/exit-codes.ts';
import { ConfigError, loadConfig } from '../config.ts';
import { DataDirError } from '../lib/data-dir.ts';
import { BackupError, restoreBackup } from './restore.ts';

export async function runRestore(file: string, opts: { force: boolean; io: CliIo; cmd: Command }): Promise<number> {
  const { io } = opts;
  try {
    const config = loadConfig(io.env as NodeJS.ProcessEnv);
    const report = await restoreBackup(file, {
      config,
      force: opts.force,
      say: (line) => io.stderr.write(`${line}\n`),
    });
    io.stdout.write(
      `restored backup ${report.id} into ${report.target === 'pglite' ? `DATA_DIR ${config.dataDir}` : 'DATABASE_URL'}: ${report.tables} tables, ${report.rows} rows, ${report.files} files, verified\n`,
    );
    for (const s of report.missingSettings)
      io.stderr.write(`warning: the backed-up server had ${s} set: give this one the same value before it starts\n`);
    return EXIT.ok;
  } catch (err) {
    if (err instanceof BackupError || err instanceof ConfigError || err instanceof DataDirError)
      throw new CliError(EXIT.failed, err.message);
    throw err;
  }
}
