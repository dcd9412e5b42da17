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
// (one for all the server's listeners) receives each listening handle over IPC
// and sends it back `lanes - 1` times:
// every copy arrives as a new descriptor of the same socket, which a plain
// net.Server listens on and hands its connections to `onConnection`.
// Best effort: on any failure the server keeps its one handle and says so.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';

const HELPER = `process.on('message', (m, handle) => { for (let i = 0; i < m.copies; i++) process.send({ listener: m.listener }, handle); });`;
const HELPER_TIMEOUT_MS = 10_000;

export interface AcceptLanes {
  /** Extra handles listening now, all listeners together (0 until the helper has answered). */
  readonly count: number;
  /** Stops every extra handle; the caller closes the original servers. */
  close(): Promise<void>;
}

export interface Listener {
  server: Server;
  onConnection: (socket: Socket) => void;
}

/** Gives each listening server `lanes - 1` extra handles; one helper process serves them all. */
export function widenAccept(listeners: Listener[], opts: { lanes: number; backlog: number; log: Logger }): AcceptLanes {
  const extra: Server[] = [];
  let closed = false;
  let helper: ChildProcess | undefined;
  const copies = opts.lanes - 1;
  const handles = listeners.map((l) => (l.server as unknown as { _handle?: object })._handle);
  const wanted = copies * listeners.length;
  const lanes: AcceptLanes = {
    get count() {
      return extra.length;
    },
    async close() {
      closed = true;
      const pending = helper;
      // A helper still answering may have copies in flight: each keeps the port
      // bound until it arrives and is closed, so wait for its channel to end.
      const gone = pending?.connected
        ? new Promise<void>((resolve) => {
            pending.once('disconnect', resolve);
            setTimeout(resolve, 2_000).unref();
          })
        : undefined;
      pending?.kill();
      await Promise.all([
        gone,
        ...extra.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))),
      ]);
    },
  };
  if (copies <= 0 || listeners.length === 0 || process.platform === 'win32' || handles.some((h) => !h)) return lanes;

  const { NODE_OPTIONS: _ignored, ...env } = process.env;
  helper = spawn(process.execPath, ['-e', HELPER], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'], env });
  const giveUp = setTimeout(() => finish(`no answer within ${HELPER_TIMEOUT_MS} ms`), HELPER_TIMEOUT_MS);
  giveUp.unref();
  function finish(problem?: string): void {
    clearTimeout(giveUp);
    helper?.kill();
    helper = undefined;
    if (problem && !closed)
      opts.log.warn(
        { problem, lanes: extra.length + listeners.length },
        'could not add accept lanes; listeners accept one connection per event-loop turn',
      );
  }
  helper.on('error', (err) => finish(err.message));
  helper.on('exit', () => {
    if (extra.length < wanted) finish('helper exited early');
  });
  helper.on('message', (m: { listener?: number }, copy) => {
    if (!copy || typeof copy !== 'object') return;
    const target = listeners[m?.listener ?? -1];
    if (closed || !target) return (copy as { close?: () => void }).close?.();
    const lane = createServer({ noDelay: true }, target.onConnection);
    lane.on('error', (err) => opts.log.warn({ err }, 'accept lane failed'));
    // listen() on a received handle calls listen(2) again: keep the same backlog.
    lane.listen(copy, opts.backlog);
    extra.push(lane);
    if (extra.length === wanted) finish();
  });
  for (const [listener, handle] of handles.entries()) helper!.send({ listener, copies }, handle as never);
  return lanes;
}
