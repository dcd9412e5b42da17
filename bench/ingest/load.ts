// Load generator, run as its own process (its CPU is not the server's):
//   node --import tsx bench/ingest/load.ts CONFIG.json
// CONFIG: { url, terminals: [{ id, username?, password? }], maxInflight }.
// Connects every terminal, prints {"ready":true}, then runs one phase per
// line read on stdin: {"rate": msgs/s for this process, "ms": duration, "boot": id}.
// Open loop: heartbeats are offered at the rate whatever the latency; a
// terminal already holding maxInflight unacknowledged heartbeats skips its
// turn (a real terminal would queue it). After the duration it waits for the
// last PUBACKs (bounded) and prints the phase result as one JSON line.
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import mqtt, { type MqttClient } from 'mqtt';

interface Terminal {
  id: string;
  username?: string;
  password?: string;
}
export interface PhaseResult {
  offered: number;
  sent: number;
  skipped: number;
  acked: number;
  latenciesMs: number[];
  ackedSeqs: Record<string, number[]>;
}

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8')) as {
  url: string;
  terminals: Terminal[];
  maxInflight: number;
};

async function connectAll(): Promise<MqttClient[]> {
  const out: MqttClient[] = [];
  for (let i = 0; i < cfg.terminals.length; i += 100) {
    out.push(
      ...(await Promise.all(
        cfg.terminals.slice(i, i + 100).map(
          (t) =>
            new Promise<MqttClient>((resolve, reject) => {
              const c = mqtt.connect(cfg.url, {
                clientId: t.id,
                username: t.username,
                password: t.password,
                protocolVersion: 4,
                reconnectPeriod: 0,
                connectTimeout: 60_000,
                keepalive: 600,
              });
              c.once('connect', () => resolve(c));
              c.once('error', reject);
            }),
        ),
      )),
    );
  }
  return out;
}

const clients = await connectAll();
const inflight = new Array<number>(clients.length).fill(0);
const seqs = new Array<number>(clients.length).fill(0);

function phase(rate: number, ms: number, boot: string): Promise<PhaseResult> {
  const res: PhaseResult = { offered: 0, sent: 0, skipped: 0, acked: 0, latenciesMs: [], ackedSeqs: {} };
  let next = 0;
  const t0 = performance.now();
  const send = (i: number) => {
    const seq = seqs[i]++;
    const id = cfg.terminals[i].id;
    const sent = performance.now();
    const hb = {
      v: 1,
      seq,
      bootId: boot,
      ts: Date.now(),
      firmware: '1.0.0',
      apps: { payment: '5.0.0' },
      battery: { pct: 50 + (seq % 50), charging: false, healthPct: 90 },
      net: { type: 'lte', signalDbm: -80 },
      sys: { cpuPct: 12, storageFreePct: 60 },
    };
    inflight[i]++;
    res.sent++;
    clients[i].publish(`fleet/${id}/heartbeat`, JSON.stringify(hb), { qos: 1 }, (err) => {
      inflight[i]--;
      if (err) return;
      res.acked++;
      if (res.latenciesMs.length < 100_000) res.latenciesMs.push(Math.round((performance.now() - sent) * 10) / 10);
      (res.ackedSeqs[id] ??= []).push(seq);
    });
  };
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      const elapsed = performance.now() - t0;
      const due = Math.floor((rate * Math.min(elapsed, ms)) / 1000);
      for (; res.offered < due; res.offered++) {
        const i = next;
        next = (next + 1) % clients.length;
        if (inflight[i] >= cfg.maxInflight) res.skipped++;
        else send(i);
      }
      const idle = inflight.every((n) => n === 0);
      if (elapsed >= ms && (idle || elapsed >= ms + 15_000)) {
        clearInterval(timer);
        resolve(res);
      }
    }, 5);
  });
}

process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const cmd = JSON.parse(line) as { rate?: number; ms?: number; boot?: string; quit?: boolean };
  if (cmd.quit) break;
  const r = await phase(cmd.rate!, cmd.ms!, cmd.boot!);
  process.stdout.write(`${JSON.stringify(r)}\n`);
}
for (const c of clients) c.end(true);
process.exit(0);
