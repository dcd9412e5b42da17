// A port bound before anything else happens at start-up, so a taken port stops
// the server before it writes a file. Connections that arrive before the
// server is ready wait (paused) and are handed over once it is.
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';

export interface ClaimedPort {
  readonly server: Server;
  readonly port: number;
  /** From now on connections go to `onConnection`, the waiting ones first. */
  hand(onConnection: (socket: Socket) => void): void;
  close(): Promise<void>;
}

export class PortTakenError extends Error {}

export function claimPort(opts: {
  setting: string;
  port: number;
  host: string;
  backlog: number;
}): Promise<ClaimedPort> {
  const waiting: Socket[] = [];
  let handler: ((socket: Socket) => void) | null = null;
  const server = createServer({ pauseOnConnect: true }, (socket) => {
    if (handler) {
      socket.resume();
      handler(socket);
    } else {
      waiting.push(socket);
      socket.once('close', () => waiting.splice(waiting.indexOf(socket) >>> 0, 1));
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new PortTakenError(
          err.code === 'EADDRINUSE'
            ? `${opts.setting} ${opts.port} is already in use on ${opts.host}`
            : `${opts.setting} ${opts.port}: ${err.message}`,
        ),
      ),
    );
    server.listen({ port: opts.port, host: opts.host, backlog: opts.backlog }, () => {
      resolve({
        server,
        port: (server.address() as AddressInfo).port,
        hand(onConnection) {
          handler = onConnection;
          for (const socket of waiting.splice(0)) {
            socket.resume();
            onConnection(socket);
          }
        },
        close: () =>
          new Promise<void>((done) => {
            for (const socket of waiting.splice(0)) socket.destroy();
            if (!server.listening) return done();
            server.close(() => done());
          }),
      });
    });
  });
}
