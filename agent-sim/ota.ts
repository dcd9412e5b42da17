// The terminal's OTA client (docs/agent-sim.md, "Updates"): check the signed manifest before
// spending bandwidth, download with resume, verify size and sha256, install,
// reboot, and report every state on `fleet/{id}/ota`. Each refusal has its
// own error code so the server and the tests can tell them apart.
import type { KeyObject } from 'node:crypto';
import semver from 'semver';
import {
  manifestSchema,
  updateParamsSchema,
  verifyManifest,
  type CommandReply,
  type Manifest,
  type OtaReport,
  type UpdateParams,
} from '../protocol/index.ts';
import type { Clock } from './clock.ts';
import { download, DownloadError, sleep } from './download.ts';
import type { TerminalProfile } from './profiles.ts';
import { chance, jitter, type Rng } from './rng.ts';

export type OtaErrorCode =
  | 'bad_params'
  | 'bad_manifest'
  | 'bad_signature'
  | 'manifest_mismatch'
  | 'manifest_expired'
  | 'incompatible_model'
  | 'downgrade_refused'
  | 'requirements_not_met'
  | 'expired_command'
  | 'download_failed'
  | 'size_mismatch'
  | 'hash_mismatch'
  | 'install_failed';

export type OtaStatus = Omit<OtaReport, 'v'>;
export type Reply = Omit<CommandReply, 'v' | 'commandId'>;

export interface Installed {
  firmware: string;
  apps: Record<string, string>;
}

export interface OtaDeps {
  clock: Clock;
  rng: Rng;
  model: string;
  profile: TerminalProfile;
  /** The fleet's publisher key; without one, signatures are not checked (and the fleet warns). */
  publicKey: KeyObject | null;
  installed(): Installed;
  report(status: OtaStatus): void;
  /** True while a payment runs: the update is deferred, not failed. */
  busy(): boolean;
  /** Writes the new version and reboots; resolves when the terminal is back. */
  installAndReboot(component: string, version: string, manifest: Manifest): Promise<void>;
  installMs?: number;
  downloadRetryMs?: number;
}

class OtaRefusal extends Error {
  constructor(
    readonly code: OtaErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** The recent jobs a terminal remembers, so a re-sent update command is answered the same way. */
const REMEMBERED_JOBS = 8;

export class OtaClient {
  private readonly jobs = new Map<string, OtaStatus>();
  private running: string | null = null;

  constructor(private readonly deps: OtaDeps) {}

  get activeJob(): string | null {
    return this.running;
  }

  lastStatus(jobId: string): OtaStatus | undefined {
    return this.jobs.get(jobId);
  }

  /** Handles an `update` command; the reply says accepted, busy or rejected, the work goes on after it. */
  handle(rawParams: unknown, expiresAt: number): Reply {
    const parsed = updateParamsSchema.safeParse(rawParams);
    if (!parsed.success)
      return {
        status: 'rejected',
        error: { code: 'bad_params', message: parsed.error.issues[0]?.message ?? 'bad params' },
      };
    const params = parsed.data;
    const known = this.jobs.get(params.jobId);
    if (known && known.state !== 'deferred') {
      this.deps.report(known);
      return replyFor(known);
    }
    if (this.running) return this.defer(params.jobId, `busy with job ${this.running}`);
    try {
      if (expiresAt < this.deps.clock.now())
        throw new OtaRefusal('expired_command', 'the update command expired before it arrived');
      const manifest = this.check(params);
      if (this.deps.busy()) return this.defer(params.jobId, 'a payment is in progress');
      if (params.version === this.currentVersion(params.component)) {
        return replyFor(this.set({ jobId: params.jobId, state: 'succeeded', progress: 100 }));
      }
      this.running = params.jobId;
      this.set({ jobId: params.jobId, state: 'accepted' });
      void this.run(params, manifest);
      return { status: 'ok', result: { jobId: params.jobId, state: 'accepted' } };
    } catch (err) {
      if (!(err instanceof OtaRefusal)) throw err;
      return replyFor(
        this.set({ jobId: params.jobId, state: 'rejected', error: { code: err.code, message: err.message } }),
      );
    }
  }

  /** Everything checked before download: signature, then what the manifest says against this terminal. */
  private check(params: UpdateParams): Manifest {
    const parsed = manifestSchema.safeParse(params.manifest);
    if (!parsed.success)
      throw new OtaRefusal('bad_manifest', parsed.error.issues[0]?.message ?? 'manifest does not parse');
    if (this.deps.publicKey && !verifyManifest(params.manifest, params.signature, this.deps.publicKey)) {
      throw new OtaRefusal('bad_signature', 'manifest signature does not verify with the fleet key');
    }
    const m = parsed.data;
    if (
      m.component !== params.component ||
      m.version !== params.version ||
      m.sha256 !== params.sha256 ||
      m.size !== params.size
    ) {
      throw new OtaRefusal(
        'manifest_mismatch',
        'command and signed manifest disagree on component, version, size or sha256',
      );
    }
    if (m.expiresAt && Date.parse(m.expiresAt) < this.deps.clock.now())
      throw new OtaRefusal('manifest_expired', `manifest expired at ${m.expiresAt}`);
    if (!m.models.includes(this.deps.model))
      throw new OtaRefusal('incompatible_model', `built for ${m.models.join(', ')}, this is a ${this.deps.model}`);
    const current = this.currentVersion(m.component);
    if (current && semver.lt(m.version, current) && !params.allowDowngrade) {
      throw new OtaRefusal('downgrade_refused', `${m.version} is lower than installed ${current}`);
    }
    for (const [component, range] of Object.entries(m.requires)) {
      const have = this.currentVersion(component);
      if (!have || !semver.satisfies(have, range))
        throw new OtaRefusal('requirements_not_met', `needs ${component} ${range}, has ${have ?? 'none'}`);
    }
    return m;
  }

  private async run(params: UpdateParams, manifest: Manifest): Promise<void> {
    const { deps } = this;
    const jobId = params.jobId;
    try {
      const result = await this.fetch(params);
      this.set({ jobId, state: 'downloaded', progress: 100 });
      this.set({ jobId, state: 'verifying' });
      if (result.sha256 !== manifest.sha256)
        throw new OtaRefusal('hash_mismatch', `sha256 ${result.sha256} is not the signed ${manifest.sha256}`);
      this.set({ jobId, state: 'installing' });
      await sleep(deps.clock, jitter(deps.rng, deps.installMs ?? 3_000, 0.3));
      if (chance(deps.rng, deps.profile.installFailRate))
        throw new OtaRefusal('install_failed', 'installer exited with status 1');
      this.set({ jobId, state: 'rebooting' });
      await deps.installAndReboot(params.component, params.version, manifest);
      this.set({ jobId, state: 'succeeded', progress: 100 });
    } catch (err) {
      const code = err instanceof OtaRefusal || err instanceof DownloadError ? err.code : 'install_failed';
      this.set({ jobId, state: 'failed', error: { code, message: (err as Error).message.slice(0, 500) } });
    } finally {
      this.running = null;
    }
  }

  private fetch(params: UpdateParams) {
    const { deps } = this;
    let reported = 0;
    this.set({ jobId: params.jobId, state: 'downloading', progress: 0 });
    return download({
      url: params.url,
      size: params.size,
      clock: deps.clock,
      retryDelayMs: deps.downloadRetryMs,
      corrupt: deps.profile.downloadCorrupt,
      cutAfterBytes: deps.profile.flakyNetwork ? Math.floor(params.size / 2) : undefined,
      onProgress: (bytes) => {
        // A report per quarter is enough to show movement without flooding the broker.
        const pct = params.size ? Math.floor((bytes / params.size) * 4) * 25 : 100;
        if (pct > reported && pct < 100) {
          reported = pct;
          this.set({ jobId: params.jobId, state: 'downloading', progress: pct });
        }
      },
    });
  }

  private defer(jobId: string, why: string): Reply {
    this.set({ jobId, state: 'deferred', error: { code: 'busy', message: why } });
    return { status: 'busy', error: { code: 'busy', message: why } };
  }

  private currentVersion(component: string): string | undefined {
    const installed = this.deps.installed();
    return component === 'firmware' ? installed.firmware : installed.apps[component.slice('app:'.length)];
  }

  private set(status: OtaStatus): OtaStatus {
    this.jobs.delete(status.jobId);
    this.jobs.set(status.jobId, status);
    while (this.jobs.size > REMEMBERED_JOBS) this.jobs.delete(this.jobs.keys().next().value!);
    this.deps.report(status);
    return status;
  }
}

function replyFor(status: OtaStatus): Reply {
  if (status.state === 'rejected') return { status: 'rejected', error: status.error };
  if (status.state === 'failed') return { status: 'error', error: status.error };
  return { status: 'ok', result: { jobId: status.jobId, state: status.state } };
}
