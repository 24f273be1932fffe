import type * as grpc from '@grpc/grpc-js';

/** Binds `server` to `listen` (host:port; port 0 picks one) and resolves to the host:port bound. */
export async function bindServer(server: grpc.Server, listen: string, credentials: grpc.ServerCredentials): Promise<string> {
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(listen, credentials, (err, bound) => (err ? reject(err) : resolve(bound))),
  );
  return `${listen.slice(0, listen.lastIndexOf(':'))}:${port}`;
}

/** The names a server listening on `listen` answers to, for its certificate: localhost, and its IPv4 host. */
export function listenNames(listen: string): { dnsNames: string[]; ipAddresses: string[] } {
  const host = listen.slice(0, listen.lastIndexOf(':'));
  return { dnsNames: ['localhost'], ipAddresses: /^[\d.]+$/.test(host) ? [host] : [] };
}
