// Uplink router: validates each payload with the protocol schema for its topic
// kind and hands it to the module that owns it. A bad payload is dropped,
// counted and logged; it never disconnects anyone.
import type { Logger } from 'pino';
import type { z } from 'zod';
import { compileValidator } from '../../protocol/fast-validate.ts';
import { uplinkSchemas, type UplinkKind } from '../../protocol/index.ts';
import type { Metrics } from '../lib/metrics.ts';

type Payload<K extends UplinkKind> = z.infer<(typeof uplinkSchemas)[K]>;

export interface UplinkContext {
  deviceId: string;
  receivedAt: Date;
}

export type UplinkHandlers = {
  [K in UplinkKind]?: (ctx: UplinkContext, payload: Payload<K>) => Promise<void>;
};

/** True when a string anywhere in the value (keys included) holds U+0000. */
function hasNul(v: unknown): boolean {
  if (typeof v === 'string') return v.includes('\u0000');
  if (Array.isArray(v)) return v.some(hasNul);
  if (v && typeof v === 'object') return Object.entries(v).some(([k, x]) => k.includes('\u0000') || hasNul(x));
  return false;
}

const DONE: Promise<void> = Promise.resolve();

export function createRouter(deps: { handlers: UplinkHandlers; log: Logger; metrics: Metrics; now: () => Date }) {
  // A plain predicate per kind that accepts most valid payloads as they are; zod judges the rest.
  const quickly = Object.fromEntries(Object.entries(uplinkSchemas).map(([k, s]) => [k, compileValidator(s)])) as Record<
    UplinkKind,
    ((v: unknown) => boolean) | null
  >;
  // The counter of each kind, bound once: labelling on every message hashed the labels every time.
  const messagesIn = new Map<UplinkKind, { inc: () => void }>();
  const countIn = (kind: UplinkKind) => {
    let c = messagesIn.get(kind);
    if (!c) messagesIn.set(kind, (c = deps.metrics.mqttMessagesIn.labels({ kind })));
    c.inc();
  };
  /**
   * Resolves once the message is durably handled (PUBACK may follow); rejects
   * only when the handler could not persist it, so the terminal sends it again.
   */
  // Not an async function: the handler's own promise goes back as it is (one promise and one
  // turn of the microtask queue fewer per message).
  return function route(deviceId: string, kind: UplinkKind, raw: Buffer): Promise<void> {
    let parsed: unknown;
    const text = raw.toString('utf8');
    try {
      parsed = JSON.parse(text);
      // JSON may carry "\u0000"; PostgreSQL's jsonb and text refuse it: bad input here, not a failed write later.
      if (text.includes('\\u0000') && hasNul(parsed)) {
        deps.metrics.mqttInvalid.inc({ kind });
        deps.log.warn(
          { deviceId, topic: `fleet/${deviceId}/${kind}`, problem: 'a string holds a NUL character (\\u0000)' },
          'payload failed validation; dropped',
        );
        return DONE;
      }
    } catch {
      deps.metrics.mqttInvalid.inc({ kind });
      deps.log.warn(
        { deviceId, topic: `fleet/${deviceId}/${kind}`, bytes: raw.length },
        'payload is not JSON; dropped',
      );
      return DONE;
    }
    let payload: unknown = parsed;
    if (!quickly[kind]?.(parsed)) {
      const result = uplinkSchemas[kind].safeParse(parsed);
      if (!result.success) {
        deps.metrics.mqttInvalid.inc({ kind });
        const issue = result.error.issues[0];
        deps.log.warn(
          { deviceId, topic: `fleet/${deviceId}/${kind}`, field: issue?.path.join('.'), problem: issue?.message },
          'payload failed validation; dropped',
        );
        return DONE;
      }
      payload = result.data;
    }
    countIn(kind);
    const handler = deps.handlers[kind] as ((ctx: UplinkContext, p: unknown) => Promise<void>) | undefined;
    if (!handler) return DONE;
    try {
      return handler({ deviceId, receivedAt: deps.now() }, payload);
    } catch (err) {
      return Promise.reject(err);
    }
  };
}

export type Router = ReturnType<typeof createRouter>;
