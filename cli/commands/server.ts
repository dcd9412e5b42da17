// Commands that run the server or work on its data directly (not through the
// API): serve, migrate, restore, firmware. Their code is loaded only when they
// run, so --help never starts anything.
import type { Command } from 'commander';
import { commandOf, type Ctx } from '../context.ts';

const SETTINGS_NOTE =
  '\nSettings come from the environment (PORT, MQTT_PORT, DATA_DIR, DATABASE_URL, …): see the README.';

export function registerServer(program: Command, ctx: Ctx): void {
  program
    .command('serve')
    .description('run the server: HTTP API on PORT, MQTT on MQTT_PORT, database in DATA_DIR or DATABASE_URL')
    .addHelpText('after', SETTINGS_NOTE)
    .action(async () => {
      const { serve } = await import('../../server/main.ts');
      await serve();
    });

  program
    .command('migrate')
    .description('bring the database schema up to date (also done at every start)')
    .addHelpText('after', SETTINGS_NOTE)
    .action(async () => {
      const { migrate } = await import('../../server/main.ts');
      await migrate();
    });

  program
    .command('restore')
    .description('restore a backup into an empty DATA_DIR or database, then verify it (the server must be stopped)')
    .argument('<file>', 'a backup made by posfleet backup or BACKUP_CRON')
    .option('--force', 'restore over a DATA_DIR or database that is not empty (its posfleet data is deleted first)')
    .addHelpText(
      'after',
      `${SETTINGS_NOTE}\nRestoring into PostgreSQL: set DATABASE_URL (a PGlite backup restores there too).`,
    )
    .action(async (file: string, opts: { force?: boolean }, ...rest: unknown[]) => {
      const { runRestore } = await import('../../server/backups/restore.cli.ts');
      ctx.exitCode = await runRestore(file, { force: opts.force === true, io: ctx.io, cmd: commandOf(rest) });
    });

  const firmware = program.command('firmware').description('firmware package tooling: keys, pack, verify');
  const usage: [string, string, string][] = [
    ['keygen', '--out DIR [--force]', 'make a publisher key pair (private key 0600)'],
    [
      'pack',
      "--component firmware|app:NAME --version X.Y.Z --models T2,T3 [--requires 'firmware>=2.1.0'] [--notes TEXT] [--expires ISO-8601] --payload FILE --key DIR/publisher.key --out FILE.pkg",
      'sign a payload into a package',
    ],
    ['verify', 'FILE.pkg --pub DIR/publisher.pub', "check a package's signature and manifest"],
  ];
  for (const [name, args, description] of usage) {
    firmware
      .command(name)
      .description(description)
      .usage(args)
      .helpOption('-h, --help', 'print this help')
      .allowUnknownOption()
      .allowExcessArguments()
      .addHelpText('after', '\nExit codes: 0 done, 1 the package is bad or the operation failed, 2 bad command line.')
      .action(async (...actionArgs: unknown[]) => {
        const { runFirmwareCommand } = await import('../../firmware/cli.ts');
        ctx.exitCode = await runFirmwareCommand([name, ...commandOf(actionArgs).args]);
      });
  }
}
