/**
 * `rbs up` (what `npm start` runs): the whole control plane in the foreground — the Temporal dev
 * server with its Web UI, a worker and the orchestrator — with state under RBS_HOME. Ctrl-C stops it.
 * Session agents are not stopped: like pods when a control plane restarts, they keep serving, and
 * their sessions carry on when the stack comes back.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { homePaths, loadConfig } from '../lib/config';
import { startChild, type Child } from '../lib/local/child';
import { waitForPort } from '../lib/local/ports';
import { startTemporalDevServer } from '../lib/local/temporal-dev-server';
import { CertificateAuthority } from '../lib/pki/ca';
import type { StackInfo } from './connect';

const DIST = path.resolve(__dirname, '..');

export async function up(): Promise<void> {
  const config = loadConfig();
  const paths = homePaths(config.home);
  fs.mkdirSync(paths.logs, { recursive: true });
  await CertificateAuthority.loadOrCreate(paths.pki);

  const [temporalHost, temporalPort] = splitAddress(config.temporal.address);
  if (temporalHost !== '127.0.0.1') throw new Error(`the local stack runs Temporal on 127.0.0.1, not ${temporalHost}`);
  const children: Child[] = [];
  const stop = async () => {
    for (const child of children.reverse()) await child.stop();
    fs.rmSync(paths.stack, { force: true });
  };
  try {
    const temporal = await startTemporalDevServer({
      logFile: path.join(paths.logs, 'temporal.log'),
      dbFile: paths.temporalDb,
      port: temporalPort,
      uiPort: Number(process.env.RBS_TEMPORAL_UI_PORT ?? temporalPort + 1000),
      ui: true,
    });
    children.push(temporal.child);
    const env = { ...process.env, RBS_HOME: config.home, RBS_TEMPORAL_ADDRESS: temporal.address };
    const service = (name: string) =>
      startChild(name, process.execPath, [path.join(DIST, 'services', name, 'main.js')], { logFile: path.join(paths.logs, `${name}.log`), env });
    children.push(service('worker'), service('orchestrator'));
    const [host, port] = splitAddress(config.orchestrator.listen);
    const failed = () => children.map((c) => c.exited() && `${c.exited()}:\n${c.logTail()}`).find(Boolean) || null;
    await waitForPort(host, port, 60_000, failed);

    const info: StackInfo = {
      orchestrator: config.orchestrator.listen,
      temporal: temporal.address,
      temporalUi: temporal.uiUrl,
      home: config.home,
      pid: process.pid,
    };
    fs.writeFileSync(paths.stack, JSON.stringify(info, null, 2));
    console.log(
      [
        'RBS local stack is up (Ctrl-C stops it)',
        `  orchestrator   ${info.orchestrator} (gRPC, mTLS)`,
        `  temporal       ${info.temporal}`,
        `  temporal UI    ${info.temporalUi}`,
        `  session store  ${config.store.kind === 'sqlite' ? config.store.file : `spanner ${config.store.databaseId}`}`,
        `  home           ${config.home} (logs in ${paths.logs})`,
        '',
        'next: npx rbs login --user $USER && npx rbs get-server --workspace .',
      ].join('\n'),
    );
    await new Promise<void>((resolve, reject) => {
      for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => resolve());
      for (const child of children) child.process.once('exit', () => reject(new Error(`${failed()}`)));
    });
    console.log('stopping…');
  } finally {
    await stop();
  }
}

function splitAddress(address: string): [string, number] {
  const at = address.lastIndexOf(':');
  return [address.slice(0, at), Number(address.slice(at + 1))];
}
