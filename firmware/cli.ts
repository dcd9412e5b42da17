// `posfleet firmware keygen|pack|verify`. Exit codes: 0 done, 1 the package is bad
// or the operation failed, 2 the command line is wrong. server/cli.ts delegates
// here; the file also runs on its own: `npx tsx firmware/cli.ts keygen --out keys`.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { Manifest } from '../protocol/artifact.ts';
import { FirmwareError, PackageError, type PackageProblem } from './errors.ts';
import { isMainModule } from './is-main.ts';
import { generateKeyPair, keyIdOf, loadPrivateKey, loadPublicKeyPem } from './keys.ts';
import { packRelease, parseRequires } from './pack.ts';
import { readPackageFileHeader, verifyPackageFile } from './package.ts';

export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
}

const defaultIo: CliIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

const USAGE = `usage:
  posfleet firmware keygen --out DIR [--force]
  posfleet firmware pack --component firmware|app:NAME --version X.Y.Z --models T2,T3
      [--requires 'firmware>=2.1.0'] [--notes TEXT] [--expires ISO-8601]
      --payload FILE --key DIR/publisher.key --out FILE.pkg
  posfleet firmware verify FILE.pkg --pub DIR/publisher.pub`;

/** A mistake on the command line: exit code 2, with the usage hint. */
class UsageError extends Error {}

type Values = Record<string, string | boolean | string[] | undefined>;

function parse(argv: string[], options: ParseArgsConfig['options']): { values: Values; positionals: string[] } {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function required(values: Values, name: string): string {
  const value = values[name];
  if (typeof value !== 'string' || value === '') throw new UsageError(`--${name} is required`);
  return value;
}

function noPositionals(positionals: string[]): void {
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
}

async function keygen(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(argv, { out: { type: 'string' }, force: { type: 'boolean' } });
  noPositionals(positionals);
  const pair = await generateKeyPair(required(values, 'out'), { force: values.force === true });
  io.out(`wrote ${pair.privateKeyPath} (private, mode 0600: keep it secret)`);
  io.out(`wrote ${pair.publicKeyPath} (public: register it with POST /api/v1/signing-keys)`);
  io.out(`key id ${pair.keyId}`);
  return 0;
}

/** Flags behind each manifest field, so a schema error can name what to fix. */
const FLAG_OF_FIELD: Record<string, string> = {
  component: '--component',
  version: '--version',
  models: '--models',
  requires: '--requires',
  notes: '--notes',
  expiresAt: '--expires',
};

function parseExpires(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  if (Number.isNaN(ms))
    throw new UsageError(`--expires "${value}" is not an ISO 8601 date-time, e.g. 2027-01-31T00:00:00Z`);
  if (ms <= Date.now()) throw new UsageError(`--expires ${value} is in the past`);
  return new Date(ms).toISOString();
}

const PACK_OPTIONS = {
  component: { type: 'string' },
  version: { type: 'string' },
  models: { type: 'string' },
  requires: { type: 'string', multiple: true },
  notes: { type: 'string' },
  expires: { type: 'string' },
  payload: { type: 'string' },
  key: { type: 'string' },
  out: { type: 'string' },
} as const;

async function pack(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(argv, PACK_OPTIONS);
  noPositionals(positionals);
  const facts = {
    component: required(values, 'component'),
    version: required(values, 'version'),
    models: required(values, 'models')
      .split(',')
      .map((m) => m.trim())
      .filter(Boolean),
    requires: parseRequires((values.requires as string[] | undefined) ?? []),
    notes: values.notes as string | undefined,
    expiresAt: parseExpires(values.expires as string | undefined),
  };
  const payload = required(values, 'payload');
  const out = required(values, 'out');
  const { key, warning } = await loadPrivateKey(required(values, 'key'));
  if (warning) io.err(`warning: ${warning}`);
  try {
    const result = await packRelease({ ...facts, payload, privateKey: key, out });
    io.out(`wrote ${result.out} (${result.bytes} bytes)`);
    io.out(summary(result.manifest));
    return 0;
  } catch (err) {
    if (err instanceof PackageError && err.problems.every((p) => p.code === 'manifest_invalid')) {
      throw new UsageError(err.problems.map((p) => flagMessage(p, values)).join('\n'));
    }
    throw err;
  }
}

/** "--version "2.4": must be a semantic version such as 2.4.0" rather than a schema path. */
function flagMessage(p: PackageProblem, values: Values): string {
  const field = p.field?.split('.')[0] ?? '';
  const flag = FLAG_OF_FIELD[field];
  if (!flag) return p.message;
  const detail = p.message.replace(/^manifest [^:]*: /, '');
  const given = typeof values[flag.slice(2)] === 'string' ? ` "${values[flag.slice(2)]}"` : '';
  const where = p.field !== field ? ` (${p.field})` : '';
  return `${flag}${given}${where}: ${detail}`;
}

function summary(m: Manifest): string {
  const lines = [
    `  component ${m.component}`,
    `  version   ${m.version}`,
    `  models    ${m.models.join(', ')}`,
    `  size      ${m.size} bytes`,
    `  sha256    ${m.sha256}`,
    `  key id    ${m.keyId}`,
    `  created   ${m.createdAt}`,
  ];
  for (const [component, range] of Object.entries(m.requires)) lines.push(`  requires  ${component} ${range}`);
  if (m.expiresAt) lines.push(`  expires   ${m.expiresAt}`);
  if (m.notes) lines.push(`  notes     ${m.notes.split('\n')[0]}`);
  return lines.join('\n');
}

async function verify(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(argv, { pub: { type: 'string' } });
  if (positionals.length !== 1) throw new UsageError('verify takes exactly one package file');
  const file = positionals[0];
  const publicKeyPem = await loadPublicKeyPem(required(values, 'pub'));
  const problems = await verifyPackageFile(file, publicKeyPem);
  if (problems.length > 0) {
    io.err(`FAIL ${file}`);
    for (const p of problems) io.err(`  ${p.code}: ${p.message}`);
    return 1;
  }
  const header = await readPackageFileHeader(file);
  io.out(`OK ${file} (signed by key ${keyIdOf(publicKeyPem)})`);
  io.out(summary(header.manifest));
  return 0;
}

const COMMANDS: Record<string, (argv: string[], io: CliIo) => Promise<number>> = { keygen, pack, verify };

/** Runs `firmware <command> …` (argv without the "firmware" word); resolves to the exit code. */
export async function runFirmwareCommand(argv: string[], io: CliIo = defaultIo): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    (command === undefined ? io.err : io.out)(USAGE);
    return command === undefined ? 2 : 0;
  }
  const run = COMMANDS[command];
  if (!run) {
    io.err(`posfleet firmware: unknown command "${command}"\n${USAGE}`);
    return 2;
  }
  try {
    return await run(rest, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`posfleet firmware ${command}: ${err.message}\n${USAGE}`);
      return 2;
    }
    if (err instanceof FirmwareError) {
      io.err(`posfleet firmware ${command}: ${err.message}`);
      return 1;
    }
    throw err;
  }
}

if (isMainModule(import.meta.url)) {
  process.exitCode = await runFirmwareCommand(process.argv.slice(2));
}
