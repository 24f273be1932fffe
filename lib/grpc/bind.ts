import type * as grpc from '@grpc/grpc-js';

/** Binds `server` to `listen` (host:port; port 0 picks one) and resolves to the host:port bound. */
export async function bindServer(server: grpc.Server, listen: string, credentials: grpc.ServerCredentials): Promise<string> {
  const host = listenHost(listen);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(listen, credentials, (err, bound) => (err ? reject(new Error(`cannot listen on ${listen}: ${err.message}`)) : resolve(bound))),
  );
  return `${host}:${port}`;
}

/** The host part of host:port (an IPv6 host keeps its brackets, so host:port stays dialable). */
function listenHost(listen: string): string {
  const colon = listen.lastIndexOf(':');
  if (colon <= 0) throw new Error(`listen address '${listen}' is not host:port`);
  return listen.slice(0, colon);
}

/** The names a server listening on `listen` answers to, for its certificate: localhost, and its IPv4 host. */
export function listenNames(listen: string): { dnsNames: string[]; ipAddresses: string[] } {
  const host = listenHost(listen);
  return { dnsNames: ['localhost'], ipAddresses: /^[\d.]+$/.test(host) ? [host] : [] };
}
