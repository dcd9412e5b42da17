// Per-terminal topic ACL (DESIGN.md §4): a terminal publishes only to its own
// device-to-server topics and subscribes only to its own server-to-device topics.
import { DEVICE_ID_PATTERN, TOPIC_ROOT, isDownlinkKind, isUplinkKind, parseTopic } from '../../protocol/topics.ts';

export type AclVerdict = { ok: true; kind: string } | { ok: false; reason: string };

const OWN_PREFIX = `${TOPIC_ROOT}/`;

export function checkPublish(clientId: string, topic: string): AclVerdict {
  // The common case, without splitting: the client's own `fleet/{clientId}/{uplink kind}`
  // (the client id was checked against the device id pattern at CONNECT).
  const at = OWN_PREFIX.length + clientId.length;
  if (
    topic.startsWith(OWN_PREFIX) &&
    topic.startsWith(clientId, OWN_PREFIX.length) &&
    topic.charCodeAt(at) === 47 /* / */
  ) {
    const kind = topic.slice(at + 1);
    if (isUplinkKind(kind)) return { ok: true, kind };
  }
  const t = parseTopic(topic);
  if (!t) return { ok: false, reason: 'foreign_topic' };
  if (t.deviceId !== clientId) return { ok: false, reason: 'other_device' };
  if (!isUplinkKind(t.kind)) return { ok: false, reason: 'not_uplink' };
  return { ok: true, kind: t.kind };
}

export function checkSubscribe(clientId: string, topic: string): AclVerdict {
  // Wildcards never match: a filter must name one of the terminal's own topics.
  const t = parseTopic(topic);
  if (!t) return { ok: false, reason: 'foreign_topic' };
  if (t.deviceId !== clientId) return { ok: false, reason: 'other_device' };
  if (!isDownlinkKind(t.kind)) return { ok: false, reason: 'not_downlink' };
  return { ok: true, kind: t.kind };
}

/** Client ids are device ids: no wildcards, separators or `$` (MQTT-3.1.3-5 allows us to be strict). */
export function isAcceptableClientId(id: string): boolean {
  return DEVICE_ID_PATTERN.test(id);
}
