/** The real Temporal server, as the Temporal CLI's dev server (SQLite persistence, Web UI). */
import { Connection } from '@temporalio/client';
import { ALL_SEARCH_ATTRIBUTES } from '../temporal/search-attributes';
import { startChild, type Child } from './child';
import { freePort, waitForPort } from './ports';
import { temporalBinary } from './tools';

/**
 * One machine, one worker per queue: a single task-queue partition lets a task meet the waiting
 * poller at once (with the default four, it may sit in a partition nobody polls), and eager
 * dispatch hands an activity to the worker that scheduled it without another poll.
 */
export const DYNAMIC_CONFIG: Record<string, unknown> = {
  'matching.numTaskqueueReadPartitions': 1,
  'matching.numTaskqueueWritePartitions': 1,
  'system.enableActivityEagerExecution': true,
};

export interface TemporalDevServer {
  address: string;
  uiUrl: string | null;
  namespace: string;
  child: Child;
}

export async function startTemporalDevServer(options: {
  logFile: string;
  /** Persist to this SQLite file; in memory when absent. */
  dbFile?: string;
  port?: number;
  uiPort?: number;
  ui?: boolean;
  /** Serve the server's Prometheus metrics on this port (tests count its requests). */
  metricsPort?: number;
}): Promise<TemporalDevServer> {
  const port = options.port ?? (await freePort());
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port), '--namespace', 'default'];
  args.push('--log-format', 'json', '--log-level', 'warn');
  let uiUrl: string | null = null;
  if (options.ui) {
    const uiPort = options.uiPort ?? (await freePort());
    args.push('--ui-port', String(uiPort));
    uiUrl = `http://127.0.0.1:${uiPort}`;
  } else {
    args.push('--headless');
  }
  if (options.dbFile) args.push('--db-filename', options.dbFile);
  if (options.metricsPort) args.push('--metrics-port', String(options.metricsPort));
  for (const [key, value] of Object.entries(DYNAMIC_CONFIG)) args.push('--dynamic-config-value', `${key}=${JSON.stringify(value)}`);
  for (const key of ALL_SEARCH_ATTRIBUTES) args.push('--search-attribute', `${key.name}=Keyword`);

  const child = startChild('temporal', temporalBinary(), args, { logFile: options.logFile });
  const failed = () => (child.exited() ? `${child.exited()}:\n${child.logTail()}` : null);
  await waitForPort('127.0.0.1', port, 60_000, failed);
  const address = `127.0.0.1:${port}`;
  // The frontend accepts connections a little before it serves; wait until it answers.
  const connection = await Connection.connect({ address });
  try {
    await connection.ensureConnected();
  } finally {
    await connection.close();
  }
  return { address, uiUrl, namespace: 'default', child };
}
