// The whole server in-process on ephemeral loopback ports, over the worker's
// shared database, with an admin key and small HTTP/MQTT helpers.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { startApp, type App } from '../../server/app.ts';
import { testConfig, type Config } from '../../server/config.ts';
import type { Clock } from '../../server/lib/clock.ts';
import { randomChars } from '../../server/lib/ids.ts';
import { sharedDb } from './db.ts';

export interface TestApp {
  app: App;
  adminToken: string;
  api: <T = any>(
    method: string,
    path: string,
    body?: unknown,
    token?: string | null,
  ) => Promise<{ status: number; body: T; headers: Headers }>;
  stop: () => Promise<void>;
}

export async function startTestApp(
  opts: { clock?: Clock; config?: Partial<Config>; adminToken?: string } = {},
): Promise<TestApp> {
  const adminToken = opts.adminToken ?? `test-admin-${randomChars(24)}`;
  const config = testConfig({ dataDir: mkdtempSync(join(tmpdir(), 'posfleet-test-')), adminToken, ...opts.config });
  const app = await startApp(config, { db: await sharedDb(), clock: opts.clock, schedule: false });
  const api: TestApp['api'] = async (method, path, body, token = adminToken) => {
    const headers: Record<string, string> = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${app.baseUrl}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      /* not JSON: keep the text */
    }
    return { status: res.status, body: parsed as any, headers: res.headers };
  };
  return { app, adminToken, api, stop: () => app.stop() };
}

/** The server's Prometheus text, as a scraper reads it (no key). */
export async function metricsText(t: TestApp): Promise<string> {
  return (await t.api('GET', '/metrics', undefined, null)).body as string;
}

/** One series of a scrape — `name` or `name{label="value"}` — as a number; NaN when absent. */
export function seriesValue(text: string, series: string): number {
  const escaped = series.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return Number(new RegExp(`^${escaped} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
}

export interface EnrolledDevice {
  deviceId: string;
  password: string;
  merchantId: string;
  serial: string;
}

export function uniqueSerial(prefix = 'SN'): string {
  return `${prefix}-${randomChars(10)}`;
}

/** A merchant, an enrolment token and one enrolled terminal, over the public API. */
export async function enrollDevice(
  t: TestApp,
  opts: { model?: string; firmware?: string; merchantId?: string; tags?: string[] } = {},
): Promise<EnrolledDevice> {
  let merchantId = opts.merchantId;
  if (!merchantId) {
    const m = await t.api('POST', '/api/v1/merchants', { name: 'Test shop', timezone: 'Europe/Berlin' });
    merchantId = m.body.id as string;
  }
  const tok = await t.api('POST', '/api/v1/enrollment-tokens', { merchantId, tags: opts.tags });
  const serial = uniqueSerial();
  const res = await t.api(
    'POST',
    '/api/v1/enroll',
    { serial, model: opts.model ?? 'T2', firmware: opts.firmware ?? '1.0.0' },
    tok.body.token,
  );
  if (res.status !== 201) throw new Error(`enrol failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { deviceId: res.body.deviceId, password: res.body.mqtt.password, merchantId, serial };
}

/** Connects with MQTT.js; resolves on CONNACK or rejects with the broker's refusal. */
export function connectMqtt(app: App, options: IClientOptions): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(app.mqttUrl, {
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: 5_000,
      ...options,
    });
    client.once('connect', () => resolve(client));
    client.once('error', (err) => {
      client.end(true);
      reject(err);
    });
  });
}

export function connectDevice(
  app: App,
  d: Pick<EnrolledDevice, 'deviceId' | 'password'>,
  extra: IClientOptions = {},
): Promise<MqttClient> {
  return connectMqtt(app, { clientId: d.deviceId, username: d.deviceId, password: d.password, ...extra });
}

export function heartbeat(seq: number, extra: Record<string, unknown> = {}) {
  return JSON.stringify({
    v: 1,
    seq,
    bootId: 'boot-1',
    ts: Date.now(),
    firmware: '1.0.0',
    apps: { payment: '5.0.0' },
    ...extra,
  });
}

/** Polls until `check` returns a truthy value (for effects that cross the broker). */
export async function eventually<T>(
  check: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  timeoutMs = 5_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
