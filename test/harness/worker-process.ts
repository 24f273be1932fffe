/**
 * The worker as deployed: the compiled dist/services/worker/main.js in its own process, configured
 * only through its environment, so a test can SIGKILL it and start a successor.
 */
import * as path from 'node:path';
import type { RbsConfig } from '../../lib/config';
import { type Child, startChild } from '../../lib/local/child';
import { temporalAuthEnv } from '../../lib/temporal/config';

const WORKER_MAIN = path.resolve(__dirname, '../../dist/services/worker/main.js');

/** Starts a worker process for `config` (its home, Temporal and how it authenticates there, task queue) plus `env`; its log goes to <home>/worker.log. */
export function startWorkerProcess(config: RbsConfig, env: Record<string, string> = {}): Child {
  const workerEnv = {
    ...process.env,
    ...env,
    RBS_HOME: config.home,
    RBS_TEMPORAL_ADDRESS: config.temporal.address,
    ...temporalAuthEnv(config.temporal.auth),
    RBS_TASK_QUEUE: config.temporal.taskQueue,
  };
  return startChild('worker', process.execPath, [WORKER_MAIN], { logFile: path.join(config.home, 'worker.log'), env: workerEnv });
}
