// What every command's action is handed: the outside world, the output chosen
// by the global options, and the API client of the chosen context.
import type { Command } from 'commander';
import { createClient, type ApiClient } from './client.ts';
import { resolveContext } from './contexts.ts';
import { colourWanted, type CliIo } from './io.ts';
import { Output } from './output.ts';

export interface GlobalOptions {
  json?: boolean;
  context?: string;
  color?: boolean;
}

export class Ctx {
  /** Set by a command that ends without an error but must not exit 0 (a rollout that failed). */
  exitCode = 0;
  constructor(readonly io: CliIo) {}

  globals(cmd: Command): GlobalOptions {
    return cmd.optsWithGlobals() as GlobalOptions;
  }

  out(cmd: Command): Output {
    const g = this.globals(cmd);
    const json = g.json === true;
    return new Output(this.io, json, g.color !== false && colourWanted(this.io, json));
  }

  api(cmd: Command): ApiClient {
    const c = resolveContext(this.io.env, this.globals(cmd).context);
    return createClient(this.io, c.url, c.token);
  }
}

/** The last positional handed to a commander action is the Command itself. */
export function commandOf(args: unknown[]): Command {
  return args[args.length - 1] as Command;
}
