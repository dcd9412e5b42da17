// The far side for bench/sim, in its own process so the simulator's CPU and
// memory are measured alone: an aedes broker and a tiny enrolment endpoint.
import { startEnrollServer, startTestBroker } from '../../agent-sim/testing.ts';

const heartbeatIntervalS = Number(process.env.BENCH_HEARTBEAT_S ?? 30);
const broker = await startTestBroker();
const enroll = await startEnrollServer({ mqttUrl: broker.url, token: 'bench-token', heartbeatIntervalS });
process.send?.({ enrollUrl: enroll.url, token: 'bench-token' });
const stop = async () => {
  await enroll.close();
  await broker.close();
  process.exit(0);
};
process.on('disconnect', () => void stop());
process.on('SIGTERM', () => void stop());
