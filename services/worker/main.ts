/** Entry point of the worker process: `node dist/services/worker/main.js` (config from RBS_* env). */
import { loadConfig } from '../../lib/config';
import { createSessionWorker } from './worker';

async function main() {
  const config = loadConfig();
  const worker = await createSessionWorker(config);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => worker.shutdown());
  console.error(`rbs worker: polling ${config.temporal.taskQueue} on ${config.temporal.address}`);
  await worker.run();
}

main().catch((err) => {
  console.error(`rbs worker: ${err instanceof Error ? err.stack : err}`);
  process.exit(1);
});
