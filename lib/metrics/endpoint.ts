/**
 * Serves a registry at GET /metrics over plain HTTP, for Prometheus to scrape. Anyone who reaches the
 * port is answered, so: nothing else is served, a collection answers within a deadline, the count
 * of connections is capped, a failure's details go to `onError` (the service's log), never to the
 * scraper, and nothing here can fail the process.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { splitHostPort } from '../host-port';

export interface MetricsEndpoint {
  /** host:port actually bound. */
  address: string;
  close(): Promise<void>;
}

export interface MetricsEndpointOptions {
  /** A collection that fails or times out, and a server error after start. */
  onError?(err: Error): void;
  /** How long a collection may take before the scrape is answered 503 (default 5 s). */
  collectTimeoutMs?: number;
}

/** Scrapers are few; more connections than this are refused at accept. */
const MAX_CONNECTIONS = 16;
const COLLECT_TIMEOUT_MS = 5_000;

/** `listen` is host:port; port 0 picks a free one. */
export async function serveMetrics(listen: string, registry: Registry, options: MetricsEndpointOptions = {}): Promise<MetricsEndpoint> {
  const { host, port } = splitHostPort(listen);
  const onError = options.onError ?? (() => undefined);
  const deadlineMs = options.collectTimeoutMs ?? COLLECT_TIMEOUT_MS;
  const server = http.createServer((request, response) => {
    if (pathOf(request.url) !== '/metrics') return void response.writeHead(404, { 'content-type': 'text/plain' }).end('only /metrics is served here\n');
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      return void response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('metrics are read with GET\n');
    }
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new CollectTimeout(`collecting metrics took longer than ${deadlineMs} ms`)), deadlineMs);
    });
    Promise.race([registry.metrics(), late])
      .then(
        (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(request.method === 'HEAD' ? undefined : text),
        (err: unknown) => {
          onError(err instanceof Error ? err : new Error(String(err)));
          const status = err instanceof CollectTimeout ? 503 : 500;
          response
            .writeHead(status, { 'content-type': 'text/plain' })
            .end(status === 503 ? 'collecting metrics took too long\n' : 'collecting metrics failed\n');
        },
      )
      .finally(() => clearTimeout(timer));
  });
  server.maxConnections = MAX_CONNECTIONS;
  // A scraper that stops sending, or reading, must not hold a socket forever.
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  server.setTimeout(30_000, (socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`cannot serve metrics on ${listen}: ${err.message}`)));
    server.listen(port, host, () => resolve());
  });
  server.on('error', onError); // after start (EMFILE at accept, say): told, not fatal
  const bound = server.address() as AddressInfo;
  return {
    address: `${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

class CollectTimeout extends Error {}

/** The path of a request target, or null for one that does not parse (an absolute URL with a broken host, say). */
function pathOf(target: string | undefined): string | null {
  try {
    return new URL(target ?? '/', 'http://metrics').pathname;
  } catch {
    return null;
  }
}
