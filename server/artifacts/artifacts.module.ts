// Builds the artifacts module from its parts; server/modules.ts wires it in.
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Audit } from '../access/audit.service.ts';
import type { Config } from '../config.ts';
import type { Db } from '../db/index.ts';
import type { Devices } from '../devices/devices.service.ts';
import type { Clock } from '../lib/clock.ts';
import type { Metrics } from '../lib/metrics.ts';
import { createLocalStore, type ArtifactStore } from './artifact-store.ts';
import { createArtifactsRepo } from './artifacts.repo.ts';
import { artifactRoutes, signingKeyRoutes } from './artifacts.routes.ts';
import { createArtifacts } from './artifacts.service.ts';
import { createDownloads } from './downloads.ts';
import { createPayloadCache } from './payload-cache.ts';
import { createSigningKeys } from './signing-keys.service.ts';
import { createUrlSigner, loadUrlSigningSecret } from './url-signing.ts';

export interface ArtifactsModuleDeps {
  config: Readonly<Config>;
  db: Db;
  clock: Clock;
  audit: Audit;
  log: Logger;
  metrics: Metrics;
  devices: Devices;
  /** Base URL terminals reach this server on (follows the bound port when PUBLIC_URL is unset). */
  publicUrl: () => string;
  /** Defaults to the local store under DATA_DIR/artifacts. */
  store?: ArtifactStore;
}

export function createArtifactsModule(deps: ArtifactsModuleDeps) {
  const { config, db, clock, audit, metrics } = deps;
  const log = deps.log.child({ module: 'artifacts' });
  const repo = createArtifactsRepo(db);
  const store = deps.store ?? createLocalStore(join(config.dataDir, 'artifacts'));
  const signer = createUrlSigner({
    secret: loadUrlSigningSecret({ secret: config.urlSigningSecret, dataDir: config.dataDir }),
    clock,
  });
  const signingKeys = createSigningKeys({ db, clock, audit, repo });
  const downloads = createDownloads({ repo, devices: deps.devices, signer, clock, publicUrl: deps.publicUrl });
  // Payloads up to 64 MiB served from memory, 256 MiB in all (a rollout's artifact is read once).
  const payloads = createPayloadCache({ maxEntryBytes: 64 * 1024 * 1024, maxBytes: 256 * 1024 * 1024 });
  const onDeleted = (id: string) => {
    downloads.forget(id);
    payloads.forget(id);
  };
  const artifacts = createArtifacts({
    db,
    clock,
    audit,
    log,
    metrics,
    repo,
    store,
    maxBytes: config.artifactMaxBytes,
    onDeleted,
  });
  return {
    artifacts,
    signingKeys,
    downloads,
    /** See Downloads.signedDownloadUrl: what the rollouts module puts in `update` commands. */
    signedDownloadUrl: downloads.signedDownloadUrl,
    routers: [signingKeyRoutes({ signingKeys }), artifactRoutes({ artifacts, downloads, store, metrics, payloads })],
  };
}

export type ArtifactsModule = ReturnType<typeof createArtifactsModule>;
