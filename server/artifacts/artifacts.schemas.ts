// HTTP schemas of the artifacts module (zod, with OpenAPI names).
import semver from 'semver';
import { modelString } from '../../protocol/http.ts';
import { componentString } from '../../protocol/artifact.ts';
import { z } from '../http/openapi.ts';

export const newSigningKeySchema = z
  .object({
    name: z.string().min(1).max(100),
    publicKey: z
      .string()
      .min(1)
      .max(4096)
      .openapi({ description: 'SPKI PEM, as `posfleet firmware keygen` writes publisher.pub' }),
  })
  .openapi('NewSigningKey');

export const signingKeySchema = z
  .object({
    id: z.string().openapi({ description: 'key id: first 16 hex characters of sha256(raw public key)' }),
    name: z.string(),
    publicKey: z.string(),
    createdBy: z.string().nullable(),
    createdAt: z.string(),
  })
  .openapi('SigningKey');

export const artifactSchema = z
  .object({
    id: z.string(),
    component: z.string(),
    version: z.string(),
    models: z.array(z.string()),
    requires: z.record(z.string(), z.string()),
    sha256: z.string(),
    size: z.number().int(),
    keyId: z.string(),
    notes: z.string().nullable(),
    expiresAt: z.string().nullable(),
    createdBy: z.string().nullable(),
    createdAt: z.string(),
  })
  .openapi('Artifact');

export const artifactDetailSchema = artifactSchema
  .extend({
    manifest: z.record(z.string(), z.unknown()).openapi({ description: 'the manifest exactly as signed' }),
    signature: z.string().openapi({ description: 'base64 ed25519 signature over the canonical JSON of the manifest' }),
  })
  .openapi('ArtifactDetail');

export const artifactQuery = z.object({
  component: componentString.optional(),
  version: z
    .string()
    .max(200)
    .refine((r) => semver.validRange(r) !== null, 'must be a semver range such as >=2.0.0 <3.0.0')
    .optional(),
  model: modelString.optional(),
});

export const downloadQuery = z.object({
  exp: z.coerce.number().int().nonnegative().optional().openapi({ description: 'signed URL: expiry, unix seconds' }),
  sig: z.string().max(128).optional().openapi({ description: 'signed URL: HMAC' }),
  device: z.string().max(100).optional().openapi({ description: 'signed URL: the device it was issued for' }),
});
