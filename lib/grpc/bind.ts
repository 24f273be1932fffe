import type * as grpc from '@grpc/grpc-js';

/** Binds `server` to `listen` (host:port; port 0 picks one) and resolves to the host:port bound. */
export async function bindServer(server: grpc.Server, listen: string, credentials: grpc.ServerCredentials): Promise<string> {
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(listen, credentials, (err, bound) => (err ? reject(err) : resolve(bound))),
  );
  return `${listen.slice(0, listen.lastIndexOf(':'))}:${port}`;
}
