/**
 * Records workflow histories for the replay test: `npm run record-histories` (after `npm run
 * build`). Each recording is a new generation beside the old ones, which keep guarding the runs
 * their code started: bump GENERATION. The session workflow checks its own workflow id, so each
 * history's id is kept with it (workflow-ids.json) for the replayer, which cannot read it from the
 * history.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { temporal as proto } from '@temporalio/proto';
import { startTemporalDevServer } from '../../lib/local/temporal-dev-server';
import type { InitialSync } from '../../lib/compute/backend';
import { cleanupScheduleId } from '../../services/worker/cleanup-schedule';
import { volumeWorkflowIdFor } from '../../lib/naming';
import { heartbeatSignal } from '../../workflows/messages';
import { volumeQuery } from '../../workflows/volume-messages';
import { cancelClaimDuringRemoval } from '../harness/cancelled-claim';
import { startStack } from '../harness/stack';
import { waitFor } from '../harness/wait';

const OUT = path.resolve(__dirname, '..', '..', '..', 'test', 'replay', 'histories');
const GENERATION = '2026-12-06-withdrawn-claims';
const IDS = path.join(OUT, 'workflow-ids.json');

async function main() {
  const logs = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-record-'));
  const temporal = await startTemporalDevServer({ logFile: path.join(logs, 'temporal.log') });
  process.env.RBS_TEST_TEMPORAL_ADDRESS = temporal.address;
  const stack = await startStack({
    RBS_IDLE_TIMEOUT_MS: '1000',
    RBS_MAX_HISTORY_EVENTS: '100',
    RBS_VOLUME_RETENTION_MS: '1500',
    RBS_VOLUME_SOFT_DELETE_MS: '1500',
  });
  const save = async (name: string, workflowId: string, runId?: string) => {
    const history = await stack.temporal.workflow.getHandle(workflowId, runId).fetchHistory();
    fs.mkdirSync(OUT, { recursive: true });
    const file = `${name}@${GENERATION}.binpb`;
    // Binary protobuf: the JSON helpers trip over two protobufjs copies in this dependency tree.
    fs.writeFileSync(path.join(OUT, file), proto.api.history.v1.History.encode(history).finish());
    const ids = fs.existsSync(IDS) ? JSON.parse(fs.readFileSync(IDS, 'utf8')) : {};
    fs.writeFileSync(IDS, `${JSON.stringify({ ...ids, [file]: workflowId }, null, 2)}\n`);
    console.log(`recorded ${file}`);
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

    // The volume's owner: claimed, released, trashed, claimed back (restored), released, trashed, removed.
    const owner = stack.temporal.workflow.getHandle(volumeWorkflowIdFor(session.volume));
    const volumeState = async () => (await owner.query(volumeQuery)).state;
    await waitFor(async () => (await volumeState()) === 'TRASHED', 10_000);
    const again = await client.getServer(ws);
    await client.endSession(again.sessionId);
    await owner.result();
    await save('volume', owner.workflowId);

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

    // A proxy reports its agent dead: probed at once, replaced, and the same GetServer returns the new one.
    const reporter = await client.getServer(stack.workspace());
    const reporterRun = (await stack.temporal.workflow.getHandle(reporter.workflowId).describe()).runId;
    const [agent] = (await stack.worker.backend.listAgents()).filter((a) => a.sessionId === reporter.sessionId);
    process.kill(Number(agent.id), 'SIGKILL');
    await client.getServer(reporter.workspace, { unreachableAgent: reporter.agentAddress });
    await client.endSession(reporter.sessionId);
    await save('reported-agent', reporter.workflowId, reporterRun); // the run that probed (it may have continued as new since)

    // A backend whose volumes the proxy's first rsync fills (Kubernetes): no sync step before READY.
    const backend = stack.worker.backend as unknown as { initialSync: InitialSync };
    backend.initialSync = 'proxy';
    const filledByProxy = await client.getServer(stack.workspace());
    backend.initialSync = 'worker';
    await client.endSession(filledByProxy.sessionId);
    await save('proxy-sync', filledByProxy.workflowId);

    // A session cancelled while its claim waits out a removal: it releases, which withdraws the claim; its
    // owner, refused the removal, keeps the volume for nobody.
    const { ended, cancelled } = await cancelClaimDuringRemoval(stack, 'recorder', stack.workspace());
    await save('cancelled-claim', cancelled.workflowId);
    await save('withdrawn-claim', volumeWorkflowIdFor(ended.volume));

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
