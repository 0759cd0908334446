// A TCP proxy a test controls, to take a server away and bring it back on the same port:
// `cut()` drops every connection and stops listening, `restore()` listens again.
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export interface TcpProxy {
  port: number;
  cut(): Promise<void>;
  /**
   * Cuts everything (as `cut()`) the next time the server sends bytes containing `marker`,
   * before they reach the client: the server acted, the client never hears it did.
   */
  cutWhenServerSends(marker: Buffer): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let trip: { marker: Buffer; fire: () => void } | undefined;
  const track = (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  };
  const listen = (port: number) =>
    new Promise<Server>((resolve, reject) => {
      const server = createServer((client) => {
        const upstream = createConnection(target);
        track(client);
        track(upstream);
        client.on('error', () => upstream.destroy());
        upstream.on('error', () => client.destroy());
        client.pipe(upstream);
        upstream.on('data', (chunk: Buffer) => {
          if (trip && chunk.includes(trip.marker)) {
            const fire = trip.fire;
            trip = undefined;
            fire();
            return;
          }
          if (!client.write(chunk)) upstream.pause();
        });
        client.on('drain', () => upstream.resume());
        upstream.on('end', () => client.end());
      });
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve(server));
    });
  let server: Server | undefined = await listen(0);
  const port = (server.address() as { port: number }).port;

  const cut = async () => {
    const s = server;
    server = undefined;
    for (const socket of sockets) socket.destroy();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  };
  return {
    port,
    cut,
    cutWhenServerSends(marker: Buffer) {
      return new Promise<void>((resolve) => {
        trip = { marker, fire: () => void cut().then(resolve) };
      });
    },
    async restore() {
      if (!server) server = await listen(port);
    },
    close: cut,
  };
}
