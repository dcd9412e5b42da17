import { pino, type Logger } from 'pino';

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

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    { level, base: { svc: 'posfleet' }, redact: { paths: REDACT, censor: '[redacted]' } },
    destination as pino.DestinationStream | undefined,
  );
}

export const silentLogger: Logger = pino({ level: 'silent' });
