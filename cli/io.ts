// What a command touches of the outside world, in one place: tests hand in
// their own streams, environment, fetch and prompt.
import { createInterface } from 'node:readline';

export interface OutStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface CliIo {
  stdout: OutStream;
  stderr: OutStream;
  env: Readonly<Record<string, string | undefined>>;
  fetch: typeof fetch;
  /** Asks for a secret on the terminal without echoing it; reads one line from stdin when it is not a terminal. */
  readSecret(question: string): Promise<string>;
  sleep(ms: number): Promise<void>;
}

export function processIo(): CliIo {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    fetch: (input, init) => fetch(input, init),
    readSecret: (question) => readSecret(question),
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  };
}

async function readSecret(question: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    const rl = createInterface({ input: stdin });
    for await (const line of rl) {
      rl.close();
      return line.trim();
    }
    return '';
  }
  process.stderr.write(question);
  stdin.setRawMode(true);
  stdin.resume();
  let value = '';
  try {
    return await new Promise<string>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        for (const ch of chunk.toString('utf8')) {
          if (ch === '\r' || ch === '\n' || ch === '\u0004') {
            stdin.off('data', onData);
            return resolve(value.trim());
          }
          if (ch === '\u0003') {
            stdin.off('data', onData);
            return reject(Object.assign(new Error('interrupted'), { interrupted: true }));
          }
          if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
          else value += ch;
        }
      };
      stdin.on('data', onData);
    });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
    process.stderr.write('\n');
  }
}

/** Colour only on a terminal, never with NO_COLOR (https://no-color.org) or --json. */
export function colourWanted(io: CliIo, json: boolean): boolean {
  return Boolean(io.stdout.isTTY) && !json && !io.env.NO_COLOR && io.env.TERM !== 'dumb';
}
