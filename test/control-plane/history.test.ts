import { getServerUpdate } from '../../workflows/messages';
import { useStack } from '../harness/stack';
import { waitFor } from '../harness/wait';

const stack = useStack({ RBS_MAX_HISTORY_EVENTS: '60' });

test('a busy session continues as new: history stays bounded, the session carries on unchanged', async () => {
  const ivy = await stack().client('ivy');
  const session = await ivy.getServer(stack().workspace());
  const handle = stack().temporal.workflow.getHandle(session.workflowId);
  const firstRun = (await handle.describe()).runId;

  for (let i = 0; i < 60; i++) await ivy.heartbeat(session.sessionId);
  await waitFor(async () => (await handle.describe()).runId !== firstRun, 30_000, 'continue-as-new');

  const current = await handle.describe();
  expect(current.historyLength).toBeLessThan(60);
  // The new run itself answers (an update, not the orchestrator's store fast path).
  const again = await handle.executeUpdate(getServerUpdate);
  expect(again).toMatchObject({ sessionId: session.sessionId, agentAddress: session.agentAddress, phase: 'READY', runId: current.runId });
  expect((await stack().worker.store.get(session.sessionId))?.runId).toBe(current.runId);
  expect(await stack().worker.backend.listAgents()).toHaveLength(1);
  expect((await ivy.endSession(session.sessionId)).phase).toBe('ENDED');
});
