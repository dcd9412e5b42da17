// The `posfleet` program: server commands (serve, migrate, restore, firmware)
// and the operator commands, which talk to a server's HTTP API only.
// docs/cli.md is the reference; exit codes are in exit-codes.ts.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { errorLine } from '../server/lib/errors.ts';
import { registerAlerts } from './commands/alerts.ts';
import { registerArtifacts } from './commands/artifacts.ts';
import { registerBackup } from './commands/backup.ts';
import { registerCompletion } from './commands/completion.ts';
import { registerDevices } from './commands/devices.ts';
import { registerHooks } from './commands/hooks.ts';
import { registerInspections } from './commands/inspections.ts';
import { registerKeys } from './commands/keys.ts';
import { registerLogin } from './commands/login.ts';
import { registerRollouts } from './commands/rollouts.ts';
import { registerServer } from './commands/server.ts';
import { registerTickets } from './commands/tickets.ts';
import { Ctx } from './context.ts';
import { CliError, EXIT } from './exit-codes.ts';
import { processIo, type CliIo } from './io.ts';

export const VERSION: string = JSON.parse(
  readFileSync(join(import.meta.dirname, '..', 'package.json'), 'utf8'),
).version;

/** Commands that work on this machine, not through the API: they take no --json or --context. */
const LOCAL_COMMANDS = new Set(['serve', 'migrate', 'restore', 'firmware', 'completion', 'help']);

function addGlobals(cmd: Command): void {
  cmd
    .addOption(new Option('--json', 'machine-readable JSON output (for scripts)'))
    .addOption(new Option('--context <name>', 'use this login context instead of the current one'))
    .addOption(new Option('--no-color', 'no colour'));
}

export function buildProgram(ctx: Ctx): Command {
  const { io } = ctx;
  const program = new Command('posfleet')
    .description('posfleet: run the server, and operate a fleet through its HTTP API')
    .version(VERSION, '-V, --version', 'print the version')
    .addOption(new Option('--json', 'machine-readable JSON output (for scripts)'))
    .addOption(new Option('--context <name>', 'use this login context instead of the current one'))
    .addOption(new Option('--no-color', 'no colour (also NO_COLOR=1; colour is only used on a terminal)'))
    .showHelpAfterError('(add --help for usage)')
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      getOutHelpWidth: () => io.stdout.columns ?? 100,
      getErrHelpWidth: () => io.stderr.columns ?? 100,
    })
    .enablePositionalOptions()
    .exitOverride();
  program.addHelpText(
    'after',
    '\nExit codes: 0 done, 1 failed, 2 bad command line, 3 not logged in or not allowed,\n4 not found, 5 server unreachable, 130 interrupted. Reference: docs/cli.md',
  );
  registerServer(program, ctx);
  registerLogin(program, ctx);
  registerDevices(program, ctx);
  registerAlerts(program, ctx);
  registerTickets(program, ctx);
  registerArtifacts(program, ctx);
  registerRollouts(program, ctx);
  registerInspections(program, ctx);
  registerHooks(program, ctx);
  registerKeys(program, ctx);
  registerBackup(program, ctx);
  registerCompletion(program, ctx);
  // Operator commands also take the global options after their own name (posfleet devices list --json).
  for (const { path, command } of allCommands(program))
    if (command.commands.length === 0 && !LOCAL_COMMANDS.has(path[0])) addGlobals(command);
  return program;
}

/** Every command and subcommand below `cmd`, parents first (completion, the --help test). */
export function allCommands(cmd: Command, path: string[] = []): { path: string[]; command: Command }[] {
  return cmd.commands.flatMap((c) => [
    { path: [...path, c.name()], command: c },
    ...allCommands(c, [...path, c.name()]),
  ]);
}

/** Runs the command line; resolves to the exit code (docs/cli.md). */
export async function runCli(argv: string[], io: CliIo = processIo()): Promise<number> {
  const ctx = new Ctx(io);
  const program = buildProgram(ctx);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return ctx.exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return EXIT.ok;
      return EXIT.usage;
    }
    if (err instanceof CliError) {
      io.stderr.write(`posfleet: ${err.message}\n`);
      return err.exitCode;
    }
    if ((err as { interrupted?: boolean }).interrupted) return EXIT.interrupted;
    io.stderr.write(`posfleet: ${errorLine(err)}\n`);
    return EXIT.failed;
  }
}
