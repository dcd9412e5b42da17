// Prometheus metrics, one registry per app instance (tests build many apps).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'posfleet_' });
  return {
    registry,
    httpDuration: new Histogram({
      name: 'posfleet_http_request_duration_seconds',
      help: 'HTTP request duration',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    mqttConnections: new Gauge({
      name: 'posfleet_mqtt_connections',
      help: 'MQTT clients connected now',
      registers: [registry],
    }),
    mqttConnects: new Counter({
      name: 'posfleet_mqtt_connects_total',
      help: 'MQTT CONNECT attempts by result',
      labelNames: ['result'],
      registers: [registry],
    }),
    mqttMessagesIn: new Counter({
      name: 'posfleet_mqtt_messages_in_total',
      help: 'MQTT messages accepted from terminals, by kind',
      labelNames: ['kind'],
      registers: [registry],
    }),
    mqttRejected: new Counter({
      name: 'posfleet_mqtt_messages_rejected_total',
      help: 'publishes and subscriptions refused by the topic ACL',
      labelNames: ['reason'],
      registers: [registry],
    }),
    mqttInvalid: new Counter({
      name: 'posfleet_mqtt_messages_invalid_total',
      help: 'MQTT payloads dropped because they did not parse or validate',
      labelNames: ['kind'],
      registers: [registry],
    }),
    mqttConnectSeconds: new Histogram({
      name: 'posfleet_mqtt_connect_seconds',
      help: 'MQTT sessions: from the CONNECT packet to the session being ready (credentials checked, CONNACK sent)',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    mqttAuthSeconds: new Histogram({
      name: 'posfleet_mqtt_auth_seconds',
      help: 'MQTT CONNECT credential checks (database lookup included)',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    mqttOversize: new Counter({
      name: 'posfleet_mqtt_oversize_packets_total',
      help: 'connections cut for a packet above MQTT_MAX_PACKET_BYTES',
      registers: [registry],
    }),
    fleetEvents: new Counter({
      name: 'posfleet_fleet_events_total',
      help: 'fleet events by type (device, presence, command), counted after their commit',
      labelNames: ['type'],
      registers: [registry],
    }),
    presenceChanges: new Counter({
      name: 'posfleet_presence_changes_total',
      help: 'terminal presence changes by the state entered',
      labelNames: ['to'],
      registers: [registry],
    }),
    commandResults: new Counter({
      name: 'posfleet_command_results_total',
      help: 'command replies recorded, by the state they moved the command to',
      labelNames: ['state'],
      registers: [registry],
    }),
    commandsSent: new Counter({
      name: 'posfleet_commands_published_total',
      help: 'commands published to terminals',
      labelNames: ['type'],
      registers: [registry],
    }),
    heartbeatsPersisted: new Counter({
      name: 'posfleet_heartbeats_persisted_total',
      help: 'heartbeats written to the database (each acknowledged to its terminal after the write)',
      registers: [registry],
    }),
    heartbeatsDuplicate: new Counter({
      name: 'posfleet_heartbeats_duplicate_total',
      help: 'heartbeats dropped as resends of one already stored (same device, bootId, seq)',
      registers: [registry],
    }),
    ingestBatchSeconds: new Histogram({
      name: 'posfleet_ingest_batch_seconds',
      help: 'heartbeat batches: time to write one (the PUBACKs of its heartbeats wait for it)',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    ingestBatchSize: new Histogram({
      name: 'posfleet_ingest_batch_size',
      help: 'heartbeats per batch written',
      buckets: [1, 5, 10, 25, 50, 100, 250, 500, 1000],
      registers: [registry],
    }),
    hookAttempts: new Counter({
      name: 'posfleet_hook_attempts_total',
      help: 'webhook delivery attempts by result (delivered, failed)',
      labelNames: ['result'],
      registers: [registry],
    }),
    hookAttemptSeconds: new Histogram({
      name: 'posfleet_hook_attempt_seconds',
      help: "webhook delivery attempts: time to the receiver's answer (or the timeout)",
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    hooksDisabled: new Counter({
      name: 'posfleet_hooks_disabled_total',
      help: 'webhook endpoints disabled after failing for too long',
      registers: [registry],
    }),
    artifactUploads: new Counter({
      name: 'posfleet_artifact_uploads_total',
      help: 'artifact uploads by result (stored or the refusal code)',
      labelNames: ['result'],
      registers: [registry],
    }),
    artifactDownloads: new Counter({
      name: 'posfleet_artifact_downloads_total',
      help: 'artifact download requests by result (full, partial, head, not_modified, refused, unsatisfiable)',
      labelNames: ['result'],
      registers: [registry],
    }),
    artifactBytesServed: new Counter({
      name: 'posfleet_artifact_bytes_served_total',
      help: 'artifact payload bytes sent to terminals',
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
