/** Entry point of the orchestrator process (config from RBS_* env). */
import { loadConfig } from '../../lib/config';
import { processLogger } from '../../lib/log';
import { runOrchestrator } from './orchestrator';

const log = processLogger('orchestrator');

async function main() {
  const orchestrator = await runOrchestrator(loadConfig(), log);
  log.info({ address: orchestrator.address, metrics: orchestrator.metricsAddress }, 'serving (mTLS)');
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => void orchestrator.stop().then(() => process.exit(0)));
  }
}

main().catch((err) => {
  log.fatal({ err }, 'could not serve');
  process.exit(1);
});
