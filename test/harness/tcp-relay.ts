/**
 * A TCP relay a test controls, standing for the network between two parts. `blackhole()` makes it
 * go silent as a dropped network does (no FIN, no RST: bytes stop flowing both ways and new
 * connections get nowhere); `heal()` lets everything held back through, as TCP would retransmit it.
 */
import * as net from 'node:net';

export interface TcpRelay {
  /** 127.0.0.1:PORT, to dial instead of the target. */
  address: string;
  blackhole(): void;
  heal(): void;
  close(): void;
}

export async function startTcpRelay(target: string): Promise<TcpRelay> {
  const sockets = new Set<net.Socket>();
  let silent = false;
  const colon = target.lastIndexOf(':');
  const [host, port] = [target.slice(0, colon), Number(target.slice(colon + 1))];
  const server = net.createServer((inbound) => {
    const outbound = net.connect(port, host);
    for (const socket of [inbound, outbound]) {
      sockets.add(socket);
      socket.setNoDelay(true); // as the ends themselves: Nagle would hold back HTTP/2's small frames (window updates)
      socket.on('error', () => undefined);
      socket.on('close', () => (sockets.delete(socket), inbound.destroy(), outbound.destroy()));
      if (silent) socket.pause();
    }
    forward(inbound, outbound);
    forward(outbound, inbound);
  });
  /** Not pipe(): a piped socket resumes itself on 'drain', through a blackhole. */
  const forward = (from: net.Socket, to: net.Socket) => {
    from.on('data', (chunk: Buffer) => {
      if (to.write(chunk)) return;
      from.pause();
      to.once('drain', () => silent || from.resume());
    });
    from.on('end', () => to.end());
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    blackhole() {
      silent = true;
      sockets.forEach((socket) => socket.pause());
    },
    heal() {
      silent = false;
      sockets.forEach((socket) => socket.resume());
    },
    close() {
      sockets.forEach((socket) => socket.destroy());
      server.close();
    },
  };
}
