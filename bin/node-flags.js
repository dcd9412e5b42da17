// Node flags the server runs with: bin/posfleet.js (so `npm start`, the
// Dockerfile and the `posfleet` command) and the benches that start it.
//
// --max-semi-space-size=128 (MiB): under load a heartbeat lives about half a
// second between its PUBLISH and its PUBACK (the batch commit). V8's default
// young generation (16 MiB semi-spaces) fills every ~80 ms at 10,000 heartbeats
// a second, so heartbeats in flight survived two scavenges, were promoted, and
// garbage collection took 15-30 % of the event loop. With 128 MiB they mostly
// die young. bench/ingest at twice the saturating load: 8,800 -> 12,300-13,600
// heartbeats/s persisted, server CPU 0.081 -> 0.054 ms per heartbeat, RSS +170
// MiB (64 MiB gained less and 256 MiB lost throughput).
export const SERVER_NODE_FLAGS = ['--max-semi-space-size=128'];
