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
    await waitForPort('127.0.0.1', port, 30_000, () => (child.exited() ? `${child.exited()}:\n${child.logTail()}` : null));
  } catch (e) {
    await child.stop();
    throw e;
  }
  return { url: `http://127.0.0.1:${port}`, child };
}
