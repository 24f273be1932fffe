/**
 * Records workflow histories for the replay test: `npm run record-histories` (after `npm run
 * build`). Re-record only when a workflow change is meant to be incompatible, and then version it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { temporal as proto } from '@temporalio/proto';
import { startTemporalDevServer } from '../../lib/local/temporal-dev-server';
import { cleanupScheduleId } from '../../services/worker/cleanup-schedule';
import { heartbeatSignal } from '../../workflows/messages';
import { startStack } from '../harness/stack';
import { waitFor } from '../harness/wait';

const OUT = path.resolve(__dirname, '..', '..', '..', 'test', 'replay', 'histories');

async function main() {
  const logs = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-record-'));
  const temporal = await startTemporalDevServer({ logFile: path.join(logs, 'temporal.log') });
  process.env.RBS_TEST_TEMPORAL_ADDRESS = temporal.address;
  const stack = await startStack({ RBS_IDLE_TIMEOUT_MS: '1000', RBS_MAX_HISTORY_EVENTS: '60' });
  const save = async (name: string, workflowId: string, runId?: string) => {
    const history = await stack.temporal.workflow.getHandle(workflowId, runId).fetchHistory();
    fs.mkdirSync(OUT, { recursive: true });
    // Binary protobuf: the JSON helpers trip over two protobufjs copies in this dependency tree.
    fs.writeFileSync(path.join(OUT, `${name}.binpb`), proto.api.history.v1.History.encode(history).finish());
    console.log(`recorded ${name}`);
  };
  try {
    const client = await stack.client('recorder');
    // Provision → READY → idle suspend → resume → end.
    const ws = stack.workspace();
    const session = await client.getServer(ws);
    await waitFor(async () => (await client.describeSession(session.sessionId)).phase === 'SUSPENDED', 10_000);
    await client.getServer(ws);
    await client.endSession(session.sessionId);
    await save('lifecycle', session.workflowId);

    // A provisioning step that fails for good.
    const gone = stack.workspace();
    fs.rmSync(gone, { recursive: true });
    const failed = await client.getServer(gone).catch(() => null);
    if (failed) throw new Error('expected provisioning to fail');
    const [failedRow] = (await client.listSessions({ includeFinished: true })).filter((s) => s.workspace === gone);
    await save('failed-provisioning', failedRow.workflowId);

    // Enough heartbeats to continue as new.
    const busy = await client.getServer(stack.workspace());
    const first = (await stack.temporal.workflow.getHandle(busy.workflowId).describe()).runId;
    // Signalled directly: the orchestrator's Heartbeat signals at most once per debounce window.
    for (let i = 0; i < 40; i++) await stack.temporal.workflow.getHandle(busy.workflowId).signal(heartbeatSignal, busy.sessionId);
    await waitFor(async () => (await stack.temporal.workflow.getHandle(busy.workflowId).describe()).runId !== first, 10_000);
    await save('continued-as-new', busy.workflowId, first);
    await client.endSession(busy.sessionId);

    const schedule = stack.temporal.schedule.getHandle(cleanupScheduleId(stack.config.temporal.taskQueue));
    await schedule.trigger();
    let cleanupId = '';
    await waitFor(async () => {
      const runs = (await schedule.describe()).info.recentActions;
      cleanupId = runs[0]?.action.workflow.workflowId ?? '';
      return cleanupId !== '' && (await stack.temporal.workflow.getHandle(cleanupId).describe()).status.name === 'COMPLETED';
    }, 20_000);
    await save('cleanup', cleanupId);
  } finally {
    await stack.stop();
    await temporal.child.stop();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
