// Secrets (API keys, device tokens, enrolment tokens) are random 256-bit values,
// so a single SHA-256 is a sufficient at-rest hash; comparison is constant time.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export function newSecret(prefix: string): string {
  return `${prefix}_${randomBytes(32).toString('base64url')}`;
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** Constant-time check of a presented secret against a stored hash. */
export function secretMatches(presented: string | Buffer, storedHash: string | null | undefined): boolean {
  if (!storedHash) return false;
  const actual = createHash('sha256').update(presented).digest();
  const expected = Buffer.from(storedHash, 'hex');
  return expected.length === actual.length && timingSafeEqual(actual, expected);
}
