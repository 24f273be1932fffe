/** Entry point of the worker process: `node dist/services/worker/main.js` (config from RBS_* env). */
import { loadConfig } from '../../lib/config';
import { processLogger } from '../../lib/log';
import { exitAfterTraces, startTracing } from '../../lib/tracing/tracing';
import { createSessionWorker } from './worker';

const log = processLogger('worker');

async function main() {
  startTracing('worker');
  const config = loadConfig();
  const worker = await createSessionWorker(config, {}, log);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => worker.shutdown());
  log.info({ taskQueue: config.temporal.taskQueue, temporal: config.temporal.address, metrics: config.metrics.worker }, 'polling');
  await worker.run();
  await exitAfterTraces(0);
}

main().catch((err) => {
  log.fatal({ err }, 'stopped');
  process.exit(1);
});
