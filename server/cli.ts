// The `posfleet` command line (bin/posfleet.js runs this file): cli/ holds the
// program, this file only runs it.
import { runCli } from '../cli/main.ts';

process.exitCode = await runCli(process.argv.slice(2));
