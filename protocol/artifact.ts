// The signed artifact manifest (docs/artifacts.md). The publisher signs the
// canonical JSON encoding of the manifest with ed25519; the server checks it at
// upload and the terminal checks it again before installing.
import { createPublicKey, verify as verifySignature, type KeyObject } from 'node:crypto';
import semver from 'semver';
import { z } from 'zod';
import { semverString } from './messages.ts';

export const COMPONENT_PATTERN = /^(firmware|app:[A-Za-z0-9._-]{1,64})$/;
export const componentString = z.string().regex(COMPONENT_PATTERN, 'must be "firmware" or "app:<name>"');

export const manifestSchema = z.object({
  v: z.literal(1),
  component: componentString,
  version: semverString,
  models: z.array(z.string().regex(/^[A-Za-z0-9._-]{1,32}$/, 'must be 1-32 characters of A-Z a-z 0-9 . _ -')).min(1),
  /** Requirements on other components, e.g. {"firmware": ">=2.1.0"}. */
  requires: z
    .record(
      componentString,
      z
        .string()
        .min(1)
        .refine((r) => semver.validRange(r) !== null, 'must be a semver range such as >=2.1.0'),
    )
    .default({}),
  size: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  createdAt: z.string().datetime(),
  expiresAt: z.string().datetime().optional(),
  notes: z.string().max(10_000).optional(),
  /** sha256 (hex, first 16 chars) of the publisher's raw public key. */
  keyId: z.string().regex(/^[0-9a-f]{16}$/),
});
export type Manifest = z.infer<typeof manifestSchema>;

/** JSON with object keys sorted at every depth and no whitespace: the bytes that are signed. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** True when `signatureB64` is a valid ed25519 signature of the manifest's canonical encoding. */
export function verifyManifest(manifest: unknown, signatureB64: string, publicKey: string | KeyObject): boolean {
  try {
    const key = typeof publicKey === 'string' ? createPublicKey(publicKey) : publicKey;
    return verifySignature(null, Buffer.from(canonicalJson(manifest)), key, Buffer.from(signatureB64, 'base64'));
  } catch {
    return false;
  }
}
