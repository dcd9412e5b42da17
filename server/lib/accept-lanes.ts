// More accepts per event-loop turn for a listening socket.
//
// Node 20's libuv takes one pending connection per listening handle per turn of
// the event loop. A busy server turns 40-200 times a second, so however deep
// its backlog it accepts only that many connections a second: after a firmware
// update thousands of terminals reconnect and download at once, wait seconds in
// the kernel's accept queue, overflow it and lose their handshakes to SYN
// retransmits (measured: 5-9 s from CONNECT sent to CONNACK in bench/rollout
// while the broker itself answered in under 50 ms).
//
// Each extra handle on the same socket takes one more connection per turn.
// Node 20 has neither SO_REUSEPORT nor dup(), so a short-lived helper process
// receives the listening handle over IPC and sends it back `lanes - 1` times:
// every copy arrives as a new descriptor of the same socket, which a plain
// net.Server listens on and hands its connections to `onConnection`.
// Best effort: on any failure the server keeps its one handle and says so.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';

const HELPER = `process.on('message', (m, handle) => { for (let i = 0; i < m.copies; i++) process.send('lane', handle); });`;
const HELPER_TIMEOUT_MS = 10_000;

export interface AcceptLanes {
  /** Extra handles listening now (0 until the helper has answered). */
  readonly count: number;
  /** Stops every extra handle; the caller closes the original server. */
  close(): Promise<void>;
}

export function widenAccept(server: Server, opts: { lanes: number; backlog: number; onConnection: (socket: Socket) => void; log: Logger }): AcceptLanes {
  const extra: Server[] = [];
  let closed = false;
  let helper: ChildProcess | undefined;
  const wanted = opts.lanes - 1;
  const handle = (server as unknown as { _handle?: object })._handle;
  const lanes: AcceptLanes = {
    get count() { return extra.length; },
    async close() {
      closed = true;
      const pending = helper;
      // A helper still answering may have copies in flight: each keeps the port
      // bound until it arrives and is closed, so wait for its channel to end.
      const gone = pending?.connected ? new Promise<void>((resolve) => {
        pending.once('disconnect', resolve);
        setTimeout(resolve, 2_000).unref();
      }) : undefined;
      pending?.kill();
      await Promise.all([gone, ...extra.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve())))]);
    },
  };
  if (wanted <= 0 || process.platform === 'win32' || !handle) return lanes;

  const { NODE_OPTIONS: _ignored, ...env } = process.env;
  helper = spawn(process.execPath, ['-e', HELPER], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'], env });
  const giveUp = setTimeout(() => finish(`no answer within ${HELPER_TIMEOUT_MS} ms`), HELPER_TIMEOUT_MS);
  giveUp.unref();
  function finish(problem?: string): void {
    clearTimeout(giveUp);
    helper?.kill();
    helper = undefined;
    if (problem && !closed) opts.log.warn({ problem, lanes: extra.length + 1 }, 'could not add accept lanes; the listener accepts one connection per event-loop turn');
  }
  helper.on('error', (err) => finish(err.message));
  helper.on('exit', () => { if (extra.length < wanted) finish('helper exited early'); });
  helper.on('message', (_m, copy) => {
    if (!copy || typeof copy !== 'object') return;
    if (closed) return (copy as { close?: () => void }).close?.();
    const lane = createServer({ noDelay: true }, opts.onConnection);
    lane.on('error', (err) => opts.log.warn({ err }, 'accept lane failed'));
    // listen() on a received handle calls listen(2) again: keep the same backlog.
    lane.listen(copy, opts.backlog);
    extra.push(lane);
    if (extra.length === wanted) finish();
  });
  helper.send({ copies: wanted }, handle as never);
  return lanes;
}
