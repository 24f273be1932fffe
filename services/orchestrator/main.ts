/** Entry point of the orchestrator process (config from RBS_* env). */
import { loadConfig } from '../../lib/config';
import { processLogger } from '../../lib/log';
import { exitAfterTraces, startTracing } from '../../lib/tracing/tracing';
import { runOrchestrator } from './orchestrator';

const log = processLogger('orchestrator');

async function main() {
  startTracing('orchestrator');
  const orchestrator = await runOrchestrator(loadConfig(), log);
  log.info({ address: orchestrator.address, metrics: orchestrator.metricsAddress }, 'serving (mTLS)');
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => void orchestrator.stop().then(() => exitAfterTraces(0)));
  }
}

main().catch((err) => {
  log.fatal({ err }, 'could not serve');
  process.exit(1);
});
