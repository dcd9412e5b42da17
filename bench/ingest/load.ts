// Closed-loop QoS 1 load: every terminal keeps `window` heartbeats in flight
// and sends the next on each PUBACK, until the deadline.
import mqtt, { type MqttClient } from 'mqtt';

export interface Terminal { id: string; username?: string; password?: string }

export async function connectAll(url: string, terminals: Terminal[]): Promise<MqttClient[]> {
  const out: MqttClient[] = [];
  for (let i = 0; i < terminals.length; i += 200) {
    out.push(...await Promise.all(terminals.slice(i, i + 200).map((t) => new Promise<MqttClient>((resolve, reject) => {
      const c = mqtt.connect(url, { clientId: t.id, username: t.username, password: t.password, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 30_000, keepalive: 300 });
      c.once('connect', () => resolve(c));
      c.once('error', reject);
    }))));
  }
  return out;
}

export interface LoadResult { acked: number; latenciesMs: number[] }

export async function runLoad(clients: MqttClient[], ids: string[], window: number, durationMs: number, seqStart: number[]): Promise<LoadResult> {
  const deadline = Date.now() + durationMs;
  const latencies: number[] = [];
  let acked = 0;
  await Promise.all(clients.map((c, i) => new Promise<void>((done) => {
    let inflight = 0;
    const topic = `fleet/${ids[i]}/heartbeat`;
    const send = () => {
      if (Date.now() >= deadline) {
        if (inflight === 0) done();
        return;
      }
      const seq = seqStart[i]++;
      const sent = performance.now();
      const hb = { v: 1, seq, bootId: 'bench', ts: Date.now(), firmware: '1.0.0', apps: { payment: '5.0.0' },
        battery: { pct: 50 + (seq % 50), charging: false, healthPct: 90 }, net: { type: 'lte', signalDbm: -80 }, sys: { cpuPct: 12, storageFreePct: 60 } };
      inflight++;
      c.publish(topic, JSON.stringify(hb), { qos: 1 }, (err) => {
        inflight--;
        if (!err) {
          acked++;
          if (latencies.length < 200_000) latencies.push(performance.now() - sent);
        }
        send();
      });
    };
    for (let k = 0; k < window; k++) send();
  })));
  return { acked, latenciesMs: latencies };
}

export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}
