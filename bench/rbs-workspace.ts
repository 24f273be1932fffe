/** A whole RBS stack on this machine (Temporal, orchestrator, worker) and a stock-client workspace of a user of it. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeTlsMaterial } from '../lib/grpc/tls';
import { startTemporalDevServer } from '../lib/local/temporal-dev-server';
import { BazelWorkspace } from '../test/data-path/fixture';
import { startStack } from '../test/harness/stack';

/** Runs `measure` with the workspace, then stops everything. */
export async function withRbsWorkspace<T>(measure: (ws: BazelWorkspace) => Promise<T>): Promise<T> {
  const logs = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-bench-data-'));
  const temporal = await startTemporalDevServer({ logFile: path.join(logs, 'temporal.log') });
  process.env.RBS_TEST_TEMPORAL_ADDRESS = temporal.address;
  const stack = await startStack();
  let ws: BazelWorkspace | undefined;
  try {
    const credentials = path.join(stack.config.home, 'credentials', 'bench');
    await writeTlsMaterial(credentials, 'user', { caCertPem: stack.ca.certPem, ...(await stack.ca.issue({ kind: 'user', user: 'bench', operator: false })) });
    ws = new BazelWorkspace({ ...process.env, RBS_HOME: stack.config.home, RBS_ORCHESTRATOR: stack.orchestrator.address, RBS_CREDENTIALS: credentials });
    return await measure(ws);
  } finally {
    ws?.destroy();
    await stack.stop();
    await temporal.child.stop();
  }
}
