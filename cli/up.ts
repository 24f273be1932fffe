/**
 * `rbs up` (what `npm start` runs): the whole control plane in the foreground — Temporal requiring
 * mTLS (its Web UI on request), the signer, a worker and the orchestrator — with state under RBS_HOME. Ctrl-C stops it.
 * A process that dies is restarted; one that keeps dying stops the stack.
 * Session agents are not stopped: like pods when a control plane restarts, they keep serving, and
 * their sessions carry on when the stack comes back.
 */
import * as fs from 'node:fs';
import { homePaths, loadConfig } from '../lib/config';
import { startLocalStack } from '../lib/local/stack';
import type { StackInfo } from '../lib/client-config';
import { writeJavabase } from './javabase';
import { UsageError } from './usage';

/**
 * The Temporal Web UI is off unless RBS_TEMPORAL_UI=on: it holds its own client certificate and
 * listens on loopback, where every user of this machine reaches it, and its read-only mode can be
 * bypassed with encoded paths (a security review found POSTs that start or terminate workflows).
 */
function uiWanted(): boolean {
  const value = process.env.RBS_TEMPORAL_UI ?? 'off';
  if (value !== 'on' && value !== 'off') throw new UsageError(`RBS_TEMPORAL_UI must be 'on' or 'off', got '${value}'`);
  return value === 'on';
}

export async function up(): Promise<void> {
  const config = loadConfig();
  const paths = homePaths(config.home);
  const ui = uiWanted();
  const log = (message: string) => console.error(`${new Date().toISOString()} rbs up: ${message}`);
  const stack = await startLocalStack(config, { ui, persist: true, log });
  const javabase = await writeJavabase(config.home);
  try {
    const info: StackInfo = {
      orchestrator: stack.orchestrator,
      temporal: stack.temporal,
      temporalUi: stack.temporalUi,
      home: config.home,
      pid: process.pid,
    };
    fs.writeFileSync(paths.stack, JSON.stringify(info, null, 2));
    console.log(
      [
        'RBS local stack is up (Ctrl-C stops it)',
        `  orchestrator   ${info.orchestrator} (gRPC, mTLS)`,
        `  temporal       ${info.temporal} (mTLS: only clients with a certificate from ${config.home}/temporal)`,
        ui
          ? `  temporal UI    ${info.temporalUi} (read-only, but reachable by every user of this machine)`
          : '  temporal UI    off (RBS_TEMPORAL_UI=on starts it, for a machine nobody else uses)',
        `  temporal CLI   temporal workflow list ${stack.temporalCliFlags.join(' ')}`,
        ...(stack.metrics
          ? [
              `  metrics        http://${stack.metrics.orchestrator}/metrics (orchestrator), http://${stack.metrics.worker}/metrics (worker, with the Temporal SDK's)`,
              `                 each agent's: metricsAddress in ${config.home}/namespaces/*/agent.json`,
            ]
          : []),
        `  session store  ${config.store.kind === 'sqlite' ? config.store.file : `spanner ${config.store.databaseId}`}`,
        `  home           ${config.home} (logs in ${paths.logs})`,
        '',
        'next: npx rbs login --user $USER, then in any Bazel workspace:',
        `  bazel --server_javabase=${javabase} build //...`,
      ].join('\n'),
    );
    await new Promise<void>((resolve, reject) => {
      for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => resolve());
      stack.givenUp.then((why) => reject(new Error(why)));
    });
    console.log('stopping…');
  } finally {
    await stack.stop();
    fs.rmSync(paths.stack, { force: true });
  }
}
