// MQTT topic contract (DESIGN.md §4). Every terminal owns `fleet/{deviceId}/…`.

export const TOPIC_ROOT = 'fleet';

/** Topics a terminal publishes (device → server). */
export const UPLINK_KINDS = ['heartbeat', 'event', 'ota', 'reply', 'presence'] as const;
export type UplinkKind = (typeof UPLINK_KINDS)[number];

/** Topics the server publishes (server → device). */
export const DOWNLINK_KINDS = ['cmd', 'config'] as const;
export type DownlinkKind = (typeof DOWNLINK_KINDS)[number];

export type TopicKind = UplinkKind | DownlinkKind;

/** Device ids, serials and MQTT client ids share this alphabet: no `/ + # $`. */
export const DEVICE_ID_PATTERN = /^[A-Za-z0-9._-]{3,64}$/;

export function topicFor(deviceId: string, kind: TopicKind): string {
  return `${TOPIC_ROOT}/${deviceId}/${kind}`;
}

export interface ParsedTopic {
  deviceId: string;
  kind: string;
}

/** Splits `fleet/{id}/{kind}`; anything of another shape yields null. */
export function parseTopic(topic: string): ParsedTopic | null {
  const parts = topic.split('/');
  if (parts.length !== 3 || parts[0] !== TOPIC_ROOT) return null;
  const [, deviceId, kind] = parts;
  if (!DEVICE_ID_PATTERN.test(deviceId) || kind.length === 0) return null;
  return { deviceId, kind };
}

export function isUplinkKind(kind: string): kind is UplinkKind {
  return (UPLINK_KINDS as readonly string[]).includes(kind);
}

export function isDownlinkKind(kind: string): kind is DownlinkKind {
  return (DOWNLINK_KINDS as readonly string[]).includes(kind);
}
