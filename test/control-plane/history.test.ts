import type { WorkflowExecutionInfo } from '@temporalio/client';
import { getServerUpdate, heartbeatSignal } from '../../workflows/messages';
import { useStack } from '../harness/stack';
import { waitFor } from '../harness/wait';

// Above what provisioning takes (about 70 events), so that the run that provisioned is the one that continues.
const LIMIT = 100;
const stack = useStack({ RBS_MAX_HISTORY_EVENTS: String(LIMIT) });

test('a busy session continues as new: history stays bounded, the session carries on unchanged', async () => {
  const ivy = await stack().client('ivy');
  const session = await ivy.getServer(stack().workspace());
  const handle = stack().temporal.workflow.getHandle(session.workflowId);
  const firstRun = (await handle.describe()).runId;

  // Busy until the workflow continues as new (heartbeat signals are history events; sent directly,
  // since the orchestrator's Heartbeat signals at most once per debounce window). A moment apart: a
  // signal that comes while a workflow task is running makes Temporal refuse that task's
  // continue-as-new, and back-to-back signals would keep it from ever continuing.
  for (let i = 0; (await handle.describe()).runId === firstRun; i++) {
    if (i > 300) throw new Error('no continue-as-new after 300 heartbeats');
    await handle.signal(heartbeatSignal, session.sessionId);
    await new Promise((r) => setTimeout(r, 20));
  }
  // Every finished run stayed near the limit (it continues at the next rest point past it).
  const continuedRuns = async () => {
    const runs: WorkflowExecutionInfo[] = [];
    for await (const run of stack().temporal.workflow.list({ query: `WorkflowId = '${session.workflowId}'` })) {
      if (run.status.name === 'CONTINUED_AS_NEW') runs.push(run);
    }
    return runs;
  };
  await waitFor(async () => (await continuedRuns()).length > 0, 10_000, 'the finished run to be listed');
  for (const run of await continuedRuns()) {
    expect(run.historyLength).toBeGreaterThanOrEqual(LIMIT);
    expect(run.historyLength).toBeLessThan(LIMIT + 15);
  }

  const current = await handle.describe();
  // The new run itself answers (an update, not the orchestrator's store fast path).
  const again = await handle.executeUpdate(getServerUpdate, { args: ['ivy'] });
  expect(again).toMatchObject({ sessionId: session.sessionId, agentAddress: session.agentAddress, phase: 'READY', runId: current.runId });
  expect((await stack().worker.store.get(session.sessionId))?.runId).toBe(current.runId);
  expect(await stack().worker.backend.listAgents()).toHaveLength(1);
  expect((await ivy.endSession(session.sessionId)).phase).toBe('ENDED');
});
