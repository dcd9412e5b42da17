// The baseline's writer: one MQTT.js subscriber on Mosquitto writing every
// heartbeat row with COPY, batched every 20 ms (as posfleet batches).
// Run as a child process so its CPU is measured apart: tsx baseline-sub.ts MQTT_URL DATABASE_URL
import mqtt from 'mqtt';
import pg from 'pg';
import { copyRows, copyText } from './copy.ts';

const [mqttUrl, dbUrl] = process.argv.slice(2);
const client = new pg.Client({ connectionString: dbUrl });
await client.connect();
const COLS = ['device_id', 'boot_id', 'seq', 'ts', 'received_at', 'drift_ms', 'firmware', 'vitals'];
let buf: string[] = [];
let writing = false;

async function flush(): Promise<void> {
  if (writing || buf.length === 0) return;
  writing = true;
  const rows = buf;
  buf = [];
  try {
    await copyRows(client, 'bench_baseline', COLS, rows);
  } catch (err) {
    process.stderr.write(`copy failed: ${(err as Error).message}\n`);
  } finally {
    writing = false;
  }
}
setInterval(() => void flush(), 20);

const sub = mqtt.connect(mqttUrl, { clientId: 'baseline-writer', clean: true, protocolVersion: 4 });
sub.on('connect', () => sub.subscribe('fleet/+/heartbeat', { qos: 1 }, () => process.stdout.write('ready\n')));
sub.on('message', (topic, payload) => {
  const now = new Date();
  const hb = JSON.parse(payload.toString()) as { seq: number; bootId: string; ts: number; firmware: string; [k: string]: unknown };
  const { v: _v, seq, bootId, ts, firmware, apps: _apps, ...vitals } = hb;
  buf.push([topic.split('/')[1], bootId, seq, new Date(ts).toISOString(), now.toISOString(), now.getTime() - ts, firmware, copyText(JSON.stringify(vitals))].join('\t'));
  if (buf.length >= 2000) void flush();
});
process.on('SIGTERM', () => void flush().then(() => process.exit(0)));
