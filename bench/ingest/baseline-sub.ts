// The baseline's writer: one MQTT.js subscriber on Mosquitto (QoS 1) writing
// every heartbeat row with COPY in batches, as posfleet batches. MQTT.js
// handles one incoming packet at a time and sends its PUBACK when
// handleMessage calls back, so deferring that callback to the COPY commit
// would write one message per batch: the subscriber acks on receipt, as Mosquitto
// does toward the terminal. Its losses are therefore counted, not prevented:
// the bench compares what the terminals had acknowledged with the rows stored.
// Run as its own process so its CPU is measured apart:
//   node --import tsx bench/ingest/baseline-sub.ts MQTT_URL DATABASE_URL
import mqtt from 'mqtt';
import pg from 'pg';
import { copyValue } from '../../server/db/copy.ts';
import { copyRows } from './copy.ts';

const [mqttUrl, dbUrl] = process.argv.slice(2);
const db = new pg.Client({ connectionString: dbUrl });
await db.connect();
const COLS = ['device_id', 'boot_id', 'seq', 'ts', 'received_at', 'drift_ms', 'firmware', 'vitals'];
const MAX_ROWS = 2_000;
const MAX_DELAY_MS = 10;
let rows: string[] = [];
let writing = false;
let timer: NodeJS.Timeout | undefined;

async function flush(): Promise<void> {
  if (timer) clearTimeout(timer);
  timer = undefined;
  if (writing || rows.length === 0) return;
  writing = true;
  const batch = rows;
  rows = [];
  try {
    await copyRows(db, 'bench_baseline', COLS, batch);
  } catch (err) {
    process.stderr.write(`copy failed : ${(err as Error).message}\n`);
  } finally {
    writing = false;
    if (rows.length > 0) void flush(); // more arrived while writing: write at once
  }
}

const sub = mqtt.connect(mqttUrl, { clientId: 'baseline-writer', clean: true, protocolVersion: 4, reconnectPeriod: 0 });
sub.handleMessage = (packet, callback) => {
  const now = new Date();
  const hb = JSON.parse(packet.payload.toString()) as {
    seq: number;
    bootId: string;
    ts: number;
    firmware: string;
    [k: string]: unknown;
  };
  const { v: _v, seq, bootId, ts, firmware, apps: _apps, ...vitals } = hb;
  rows.push(
    [
      packet.topic.split('/')[1],
      bootId,
      seq,
      new Date(ts).toISOString(),
      now.toISOString(),
      now.getTime() - ts,
      firmware,
      copyValue(JSON.stringify(vitals)),
    ].join('\t'),
  );
  if (rows.length >= MAX_ROWS) void flush();
  else timer ??= setTimeout(() => void flush(), MAX_DELAY_MS);
  callback();
};
sub.on('connect', () => sub.subscribe('fleet/+/heartbeat', { qos: 1 }, () => process.stdout.write('ready\n')));
sub.on('error', (err) => process.stderr.write(`baseline subscriber: ${err.message}\n`));
process.on('SIGTERM', () => {
  const stop = async () => {
    while (writing || rows.length > 0) {
      await flush();
      await new Promise((r) => setTimeout(r, 10));
    }
    process.exit(0);
  };
  void stop();
});
