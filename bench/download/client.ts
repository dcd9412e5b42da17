// One process of downloaders (forked by run.ts): each downloads the URL `rounds` times, a
// new connection each time (a 64 MiB body dwarfs the handshake, and no keep-alive
// timer can race a starved client), and throws the bytes away. Reports bytes and errors.
import { Agent, request } from 'node:http';

interface Job {
  url: string;
  headers: Record<string, string>;
  downloaders: number;
  rounds: number;
  expectBytes: number;
}

const job = JSON.parse(process.env.BENCH_JOB!) as Job;
const send = (m: unknown) => process.send!(m);
const agent = new Agent({ keepAlive: false, maxSockets: job.downloaders });

function once(): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(job.url, { agent, headers: job.headers }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`HTTP ${res.statusCode}`));
        return;
      }
      let n = 0;
      res.on('data', (chunk: Buffer) => {
        n += chunk.length;
      });
      res.on('end', () =>
        n === job.expectBytes ? resolve(n) : reject(new Error(`got ${n} bytes, expected ${job.expectBytes}`)),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function downloader(): Promise<number> {
  let total = 0;
  for (let i = 0; i < job.rounds; i++) total += await once();
  return total;
}

process.once('message', async () => {
  try {
    const totals = await Promise.all(Array.from({ length: job.downloaders }, downloader));
    send({ bytes: totals.reduce((a, b) => a + b, 0) });
  } catch (err) {
    send({ error: (err as Error).message });
  } finally {
    agent.destroy();
    process.disconnect();
  }
});
send({ ready: true });
