import type * as grpc from '@grpc/grpc-js';

/** In-flight calls get this long to finish before connections are cut. */
const DEFAULT_GRACE_MS = 2000;

/** Stops accepting calls, lets in-flight ones finish for up to graceMs, then cuts the rest. */
export function shutdownGracefully(server: grpc.Server, graceMs = DEFAULT_GRACE_MS): Promise<void> {
  return new Promise<void>((resolve) => {
    const force = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(force);
      resolve();
    });
  });
}
