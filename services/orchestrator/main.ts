/** Entry point of the orchestrator process (config from RBS_* env). */
import { loadConfig } from '../../lib/config';
import { runOrchestrator } from './orchestrator';

async function main() {
  const orchestrator = await runOrchestrator(loadConfig());
  console.error(`rbs orchestrator: serving on ${orchestrator.address} (mTLS)`);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => void orchestrator.stop().then(() => process.exit(0)));
  }
}

main().catch((err) => {
  console.error(`rbs orchestrator: ${err instanceof Error ? err.stack : err}`);
  process.exit(1);
});
