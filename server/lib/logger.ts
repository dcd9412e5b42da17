import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

// Secrets never reach a log line, whatever a caller passes by mistake.
const REDACT = [
  'password',
  'token',
  'secret',
  'authorization',
  '*.password',
  '*.token',
  '*.secret',
  'req.headers.authorization',
  'headers.authorization',
];

export type LogFormat = 'json' | 'pretty';

export interface LogOptions {
  /** One format for the whole run: JSON lines (pino) or readable lines (pino-pretty). */
  format?: LogFormat;
  /** Colour in readable lines (a terminal that did not ask for NO_COLOR). */
  colour?: boolean;
  destination?: NodeJS.WritableStream;
}

export function createLogger(level: string, opts: LogOptions = {}): Logger {
  const options = { level, base: { svc: 'posfleet' }, redact: { paths: REDACT, censor: '[redacted]' } };
  if (opts.format === 'pretty') {
    const stream = pretty({
      colorize: opts.colour ?? false,
      sync: true,
      destination: opts.destination ?? 1,
      ignore: 'pid,hostname,svc',
      translateTime: 'SYS:HH:MM:ss.l',
    });
    return pino(options, stream);
  }
  return pino(options, opts.destination as pino.DestinationStream | undefined);
}

export const silentLogger: Logger = pino({ level: 'silent' });
