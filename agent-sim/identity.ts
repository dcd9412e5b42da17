// A terminal's identity: enrolment over HTTP once, then kept in a state file so a
// restarted simulator reconnects as the same device instead of enrolling again.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import {
  API_BASE,
  enrollResponseSchema,
  mqttCredentialsSchema,
  semverString,
  type EnrollRequest,
  type EnrollResponse,
} from '../protocol/index.ts';

export const identitySchema = z.object({
  serial: z.string(),
  deviceId: z.string(),
  mqtt: mqttCredentialsSchema,
  heartbeatIntervalS: z.number().int().positive(),
  firmware: semverString,
  apps: z.record(z.string(), semverString),
  patchLevel: z.string().optional(),
});
export type Identity = z.infer<typeof identitySchema>;

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
  /** Worth another try later: the server is busy or briefly unavailable. */
  get retryable(): boolean {
    return this.status === 0 || this.status === 429 || this.status >= 500;
  }
}

/**
 * Calls the posfleet HTTP API and parses its JSON answer; errors carry the API's
 * error code. A POST with `body`, a GET without.
 */
export async function apiCall(server: string, path: string, token: string, body?: unknown): Promise<unknown> {
  const method = body === undefined ? 'GET' : 'POST';
  let res: Response;
  try {
    res = await fetch(`${server.replace(/\/$/, '')}${API_BASE}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new HttpError(0, 'unreachable', `${server}: ${(err as Error).message}`);
  }
  const text = await res.text();
  const json = text ? safeJson(text) : undefined;
  if (!res.ok) {
    const error = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
    throw new HttpError(
      res.status,
      error?.code ?? `http_${res.status}`,
      `${method} ${path}: ${res.status} ${error?.message ?? text.slice(0, 200)}`,
    );
  }
  return json;
}

const safeJson = (text: string): unknown => {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
};

export async function enroll(server: string, token: string, body: EnrollRequest): Promise<EnrollResponse> {
  return enrollResponseSchema.parse(await apiCall(server, '/enroll', token, body));
}

/** State files live per server, so one state dir can serve several servers. */
export function stateDirFor(root: string, server: string): string {
  return join(root, server.replace(/^https?:\/\//, '').replace(/[^A-Za-z0-9.-]+/g, '_'));
}

export async function loadIdentity(dir: string, serial: string): Promise<Identity | null> {
  try {
    return identitySchema.parse(JSON.parse(await readFile(join(dir, `${serial}.json`), 'utf8')));
  } catch {
    return null;
  }
}

/** Written to a temporary name and renamed, so a crash never leaves half a file. */
export async function saveIdentity(dir: string, identity: Identity): Promise<void> {
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${identity.serial}.json`);
  await writeFile(`${file}.tmp`, JSON.stringify(identity), { mode: 0o600 });
  await rename(`${file}.tmp`, file);
}
