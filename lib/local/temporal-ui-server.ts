/**
 * The Temporal Web UI for a frontend that requires mTLS: the UI server holds a client certificate,
 * and serves anyone who reaches its port. So it is read-only (`disableWriteActions`: the UI server
 * itself refuses every write, letting through only reads and queries), as the CLI's dev server
 * configures it otherwise (loopback, insecure cookies on plain HTTP).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startChild, type Child } from './child';
import { freePort, waitForPort } from './ports';
import { temporalUiServerBinary } from './tools';

export interface TemporalUiServer {
  url: string;
  child: Child;
}

export async function startTemporalUi(options: {
  /** The frontend and the client certificate the UI server presents to it. */
  temporal: { address: string; namespace: string; caFile: string; serverName: string; certFile: string; keyFile: string };
  dir: string;
  logFile: string;
  port?: number;
}): Promise<TemporalUiServer> {
  const { temporal } = options;
  const port = options.port ?? (await freePort());
  fs.mkdirSync(path.join(options.dir, 'config'), { recursive: true, mode: 0o700 });
  const config = {
    host: '127.0.0.1',
    port,
    temporalGrpcAddress: temporal.address,
    defaultNamespace: temporal.namespace,
    enableUi: true,
    disableWriteActions: true,
    hideLogs: true,
    notifyOnNewVersion: false,
    cors: { cookieInsecure: true },
    tls: { caFile: temporal.caFile, certFile: temporal.certFile, keyFile: temporal.keyFile, serverName: temporal.serverName, enableHostVerification: true },
  };
  // YAML is a superset of JSON.
  fs.writeFileSync(path.join(options.dir, 'config', 'development.yaml'), JSON.stringify(config, null, 2));
  const child = startChild('temporal-ui', temporalUiServerBinary(), ['--root', options.dir, '--config', 'config', '--env', 'development', 'start'], {
    logFile: options.logFile,
  });
  try {
    const exited = () => (child.exited() ? `${child.exited()}:\n${child.logTail()}` : null);
    await waitForPort('127.0.0.1', port, 30_000, exited);
    await answersHttp(`http://127.0.0.1:${port}/`, 30_000, exited);
  } catch (e) {
    await child.stop();
    throw e;
  }
  return { url: `http://127.0.0.1:${port}`, child };
}

/** Resolves once `url` answers 200: what listens on the port is the UI, not another process that took it first. */
async function answersHttp(url: string, timeoutMs: number, exited: () => string | null): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    const dead = exited();
    if (dead) throw new Error(dead);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      await response.body?.cancel();
      if (response.status === 200) return;
      last = `HTTP ${response.status}`;
    } catch (e) {
      last = e instanceof Error ? (e.cause instanceof Error ? e.cause.message : e.message) : String(e);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the Temporal UI at ${url} did not answer 200 within ${timeoutMs} ms (last: ${last})`);
}
