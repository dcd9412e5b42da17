// The package container (docs/artifacts.md): magic, header length, JSON header
// {manifest, signature, publicKey?}, payload. The header comes first and is small
// so the server can judge an upload before it accepts a single payload byte, and
// then stream the payload to disk while hashing it.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { manifestSchema, verifyManifest, type Manifest } from '../protocol/artifact.ts';
import { FirmwareError, PackageError, problem, type PackageProblem } from './errors.ts';
import { keyIdOf } from './keys.ts';
import { readUpTo } from './stream-bytes.ts';

export const PACKAGE_MAGIC = Buffer.from('POSFPKG1', 'ascii');
/** Bytes before the JSON header: magic (8) + uint32 BE header length (4). */
export const PREAMBLE_BYTES = 12;
/** A header is a few hundred bytes; the cap stops a hostile upload from making us buffer much. */
export const MAX_HEADER_BYTES = 64 * 1024;

export interface PackageHeaderFields {
  manifest: unknown;
  signature: string;
  publicKey?: string;
}

/** The header as read, before the manifest is checked against the schema. */
export interface RawPackageHeader {
  /** The manifest object exactly as in the file: the signature covers this, not the parsed copy. */
  rawManifest: unknown;
  signature: string;
  publicKey?: string;
  /** Bytes before the payload (preamble + JSON header): the payload starts at this offset. */
  headerBytes: number;
}

export interface PackageHeader extends RawPackageHeader {
  manifest: Manifest;
}

/** Magic, length and JSON header: everything that precedes the payload. */
export function encodePackageHeader(fields: PackageHeaderFields): Buffer {
  const json = Buffer.from(JSON.stringify(fields), 'utf8');
  if (json.length > MAX_HEADER_BYTES) {
    throw new PackageError([
      problem('header_too_large', `header is ${json.length} bytes, the limit is ${MAX_HEADER_BYTES}`),
    ]);
  }
  const length = Buffer.alloc(4);
  length.writeUInt32BE(json.length);
  return Buffer.concat([PACKAGE_MAGIC, length, json]);
}

export interface WritePackageOptions extends PackageHeaderFields {
  manifest: Manifest;
  /** Payload file path, or the bytes themselves. */
  payload: string | Uint8Array;
  out: string;
}

/**
 * Writes the package to `out` atomically (temp file + rename). The payload is
 * hashed while it is copied and must match the manifest's size and sha256, so
 * a payload that changed after it was signed never ends up in a package.
 */
export async function writePackage(opts: WritePackageOptions): Promise<{ bytes: number }> {
  const header = encodePackageHeader({ manifest: opts.manifest, signature: opts.signature, publicKey: opts.publicKey });
  const tmp = `${opts.out}.tmp-${process.pid}-${Date.now()}`;
  const check = createPayloadVerifier(opts.manifest);
  const payload = typeof opts.payload === 'string' ? createReadStream(opts.payload) : Readable.from([opts.payload]);
  try {
    const out = createWriteStream(tmp, { flags: 'wx' });
    out.write(header);
    await pipeline(payload, check.stream, out);
    const problems = check.problems();
    if (problems.length > 0) throw new PackageError(problems);
    await rename(tmp, opts.out);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  return { bytes: header.length + opts.manifest.size };
}

type Source = Readable | WebReadableStream<Uint8Array> | Uint8Array;

/**
 * Reads magic, length and JSON header and checks the manifest against the schema.
 * For a stream, exactly the header is consumed and `payload` is the same stream
 * positioned at the first payload byte; for bytes, `payload` is the rest of them.
 * Throws PackageError (bad_magic, truncated, header_too_large, header_invalid, manifest_invalid).
 */
export async function readPackageHeader(source: Uint8Array): Promise<PackageHeader & { payload: Buffer }>;
export async function readPackageHeader(
  source: Readable | WebReadableStream<Uint8Array>,
): Promise<PackageHeader & { payload: Readable }>;
export async function readPackageHeader(source: Source): Promise<PackageHeader & { payload: Buffer | Readable }> {
  const raw = await readRawPackageHeader(source);
  const parsed = parseManifest(raw.rawManifest);
  if (!parsed.ok) throw new PackageError(parsed.problems);
  return { ...raw, manifest: parsed.manifest };
}

/** Reads and checks only the header of a package file (for listings and summaries). */
export async function readPackageFileHeader(path: string): Promise<PackageHeader> {
  const file = createReadStream(path);
  try {
    const { payload: _payload, ...header } = await readPackageHeader(file);
    return header;
  } finally {
    file.destroy();
  }
}

/** Like readPackageHeader but leaves the manifest unchecked (verifyPackageFile reports every problem at once). */
export async function readRawPackageHeader(source: Source): Promise<RawPackageHeader & { payload: Buffer | Readable }> {
  if (source instanceof Uint8Array) {
    const buf = Buffer.from(source.buffer, source.byteOffset, source.byteLength);
    const header = decodeHeader(buf.subarray(0, PREAMBLE_BYTES), (n) =>
      buf.subarray(PREAMBLE_BYTES, PREAMBLE_BYTES + n),
    );
    return { ...header, payload: buf.subarray(header.headerBytes) };
  }
  const stream = source instanceof Readable ? source : Readable.fromWeb(source);
  const preamble = await readUpTo(stream, PREAMBLE_BYTES);
  const length = checkPreamble(preamble);
  const json = await readUpTo(stream, length);
  return { ...decodeJson(json, length), payload: stream };
}

function decodeHeader(preamble: Buffer, take: (n: number) => Buffer): RawPackageHeader {
  const length = checkPreamble(preamble);
  return decodeJson(take(length), length);
}

/** Returns the JSON header length announced by the preamble. */
function checkPreamble(preamble: Buffer): number {
  const magicPart = preamble.subarray(0, PACKAGE_MAGIC.length);
  if (!magicPart.equals(PACKAGE_MAGIC.subarray(0, magicPart.length))) {
    throw new PackageError([problem('bad_magic', `not a posfleet package: the file must start with "POSFPKG1"`)]);
  }
  if (preamble.length < PREAMBLE_BYTES) {
    throw new PackageError([problem('truncated', `file ends after ${preamble.length} bytes, inside the preamble`)]);
  }
  const length = preamble.readUInt32BE(PACKAGE_MAGIC.length);
  if (length > MAX_HEADER_BYTES) {
    throw new PackageError([
      problem('header_too_large', `header length ${length} is over the limit of ${MAX_HEADER_BYTES} bytes`),
    ]);
  }
  return length;
}

function decodeJson(json: Buffer, length: number): RawPackageHeader {
  if (json.length < length) {
    throw new PackageError([problem('truncated', `header announces ${length} bytes, file has ${json.length}`)]);
  }
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(json));
  } catch (err) {
    throw new PackageError([problem('header_invalid', `header is not UTF-8 JSON: ${(err as Error).message}`)]);
  }
  const h = value as Record<string, unknown> | null;
  const problems: PackageProblem[] = [];
  if (!h || typeof h !== 'object' || Array.isArray(h))
    problems.push(problem('header_invalid', 'header must be a JSON object'));
  else {
    if (!h.manifest || typeof h.manifest !== 'object' || Array.isArray(h.manifest))
      problems.push(problem('header_invalid', 'header.manifest must be an object', 'manifest'));
    if (typeof h.signature !== 'string' || h.signature.length === 0)
      problems.push(problem('header_invalid', 'header.signature must be a base64 string (no signature)', 'signature'));
    if (h.publicKey !== undefined && typeof h.publicKey !== 'string')
      problems.push(problem('header_invalid', 'header.publicKey must be a PEM string', 'publicKey'));
  }
  if (problems.length > 0) throw new PackageError(problems);
  const { manifest, signature, publicKey } = h as { manifest: unknown; signature: string; publicKey?: string };
  const header: RawPackageHeader = { rawManifest: manifest, signature, headerBytes: PREAMBLE_BYTES + length };
  if (publicKey !== undefined) header.publicKey = publicKey;
  return header;
}

/** Schema check with one problem per bad field ("version: must be a semantic version such as 2.4.0"). */
export function parseManifest(
  raw: unknown,
): { ok: true; manifest: Manifest } | { ok: false; problems: PackageProblem[] } {
  const result = manifestSchema.safeParse(raw);
  if (result.success) return { ok: true, manifest: result.data };
  const problems = result.error.issues.map((issue) => {
    const field = issue.path.map(String).join('.') || '(manifest)';
    return problem('manifest_invalid', `manifest ${field}: ${issue.message}`, field);
  });
  return { ok: false, problems };
}

/**
 * Signature, key id and expiry checks of a header against a trusted public key.
 * A key id that names another key is reported alone: the signature was made by
 * that other key, so "bad signature" would mislead.
 */
export function checkHeaderTrust(header: RawPackageHeader, publicKeyPem: string, now = new Date()): PackageProblem[] {
  const problems: PackageProblem[] = [];
  const manifest = header.rawManifest as Partial<Record<keyof Manifest, unknown>>;
  const trustedId = keyIdOf(publicKeyPem);
  if (typeof manifest.keyId === 'string' && manifest.keyId !== trustedId) {
    problems.push(
      problem('key_id_mismatch', `signed by key ${manifest.keyId}, but the given public key is ${trustedId}`, 'keyId'),
    );
  } else if (!verifyManifest(header.rawManifest, header.signature, publicKeyPem)) {
    problems.push(
      problem(
        'bad_signature',
        `signature does not verify with key ${trustedId} (manifest or signature altered)`,
        'signature',
      ),
    );
  }
  if (header.publicKey !== undefined && safeKeyId(header.publicKey) !== manifest.keyId) {
    problems.push(problem('key_id_mismatch', `embedded publicKey is not key ${String(manifest.keyId)}`, 'publicKey'));
  }
  if (typeof manifest.expiresAt === 'string' && Date.parse(manifest.expiresAt) < now.getTime()) {
    problems.push(problem('expired', `release expired at ${manifest.expiresAt}`, 'expiresAt'));
  }
  return problems;
}

function safeKeyId(pem: string): string | undefined {
  try {
    return keyIdOf(pem);
  } catch {
    return undefined;
  }
}

export interface PayloadVerifier {
  /** Pass-through that counts and hashes; it fails as soon as more than `size` bytes arrive. */
  stream: Transform;
  /** After the stream ended: truncated, sha256_mismatch, or nothing. */
  problems(): PackageProblem[];
  bytes(): number;
}

/** Streams the payload through a size and sha256 check; the server pipes uploads through it to disk. */
export function createPayloadVerifier(expected: { size: number; sha256: string }): PayloadVerifier {
  const hash = createHash('sha256');
  let seen = 0;
  let digest: string | undefined;
  const stream = new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      if (seen > expected.size) {
        done(
          new PackageError([
            problem('size_mismatch', `payload is longer than the manifest size of ${expected.size} bytes`, 'size'),
          ]),
        );
        return;
      }
      hash.update(chunk);
      done(null, chunk);
    },
    flush(done) {
      digest = hash.digest('hex');
      done();
    },
  });
  const problems = (): PackageProblem[] => {
    if (seen < expected.size)
      return [problem('truncated', `payload is ${seen} bytes, manifest size is ${expected.size}`, 'size')];
    if (digest !== expected.sha256)
      return [problem('sha256_mismatch', `payload sha256 is ${digest}, manifest says ${expected.sha256}`, 'sha256')];
    return [];
  };
  return { stream, problems, bytes: () => seen };
}

/** Every problem found in a package file, checked against a trusted public key; [] means it is good. */
export async function verifyPackageFile(
  path: string,
  publicKeyPem: string,
  opts: { now?: Date } = {},
): Promise<PackageProblem[]> {
  const file = createReadStream(path);
  try {
    const header = await readRawPackageHeader(file);
    const parsed = parseManifest(header.rawManifest);
    const problems = parsed.ok ? [] : parsed.problems;
    problems.push(...checkHeaderTrust(header, publicKeyPem, opts.now));
    const m = header.rawManifest as { size?: unknown; sha256?: unknown };
    if (typeof m.size === 'number' && typeof m.sha256 === 'string') {
      problems.push(...(await checkPayload(header.payload as Readable, { size: m.size, sha256: m.sha256 })));
    }
    return problems;
  } catch (err) {
    if (err instanceof PackageError) return err.problems;
    const code = (err as NodeJS.ErrnoException).code;
    if (code) throw new FirmwareError('package_unreadable', `cannot read ${path}: ${code}`);
    throw err;
  } finally {
    file.destroy();
  }
}

async function checkPayload(payload: Readable, expected: { size: number; sha256: string }): Promise<PackageProblem[]> {
  const check = createPayloadVerifier(expected);
  const discard = new Writable({ write: (_chunk, _enc, done) => done() });
  try {
    await pipeline(payload, check.stream, discard);
  } catch (err) {
    if (err instanceof PackageError) return err.problems;
    throw err;
  }
  return check.problems();
}
