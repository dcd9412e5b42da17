// The `posfleet` command line.
import { migrate, serve } from './main.ts';

const USAGE = `usage: posfleet <command>
  serve                 run the server (default)
  migrate               bring the database schema up to date
  firmware keygen|pack|verify …   firmware package tooling (posfleet firmware --help)`;

async function main(argv: string[]): Promise<void> {
  const [command = 'serve', ...rest] = argv;
  switch (command) {
    case 'serve':
      return serve();
    case 'migrate':
      return migrate();
    case 'firmware': {
      const { runFirmwareCommand } = await import('../firmware/cli.ts');
      process.exitCode = await runFirmwareCommand(rest);
      return;
    }
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${USAGE}\n`);
      return;
    default:
      process.stderr.write(`posfleet: unknown command '${command}'\n${USAGE}\n`);
      process.exitCode = 2;
  }
}

await main(process.argv.slice(2));
