// Exit codes of the `posfleet` command, documented in docs/cli.md. Scripts and
// CI steps rely on them: change them only on purpose.
export const EXIT = {
  /** Done. */
  ok: 0,
  /** The operation did not succeed: the API refused it, a rollout ended failed or cancelled, a backup is damaged. */
  failed: 1,
  /** The command line is wrong (unknown command or option, missing argument). */
  usage: 2,
  /** Not logged in, or the API key is unknown (401) or its role too low (403). */
  auth: 3,
  /** What was asked for does not exist (404). */
  notFound: 4,
  /** The server cannot be reached, or did not become ready in time. */
  unreachable: 5,
  /** Interrupted (Ctrl-C). */
  interrupted: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error the command line reports in one line and turns into an exit code. */
export class CliError extends Error {
  constructor(
    readonly exitCode: ExitCode,
    message: string,
  ) {
    super(message);
  }
}
