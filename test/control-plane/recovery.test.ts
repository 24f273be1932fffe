import { useStack } from '../harness/stack';
import { waitFor } from '../harness/wait';

const stack = useStack({ RBS_AGENT_PROBE_INTERVAL_MS: '300', RBS_IDLE_TIMEOUT_MS: '3000' });

test('an agent that dies is found by the probe and restarted; the session stays the same', async () => {
  const rae = await stack().client('rae');
  const session = await rae.getServer(stack().workspace());
  const [agent] = await stack().worker.backend.listAgents();
  process.kill(Number(agent.id), 'SIGKILL');

  await waitFor(
    async () => {
      const now = await rae.describeSession(session.sessionId);
      return now.phase === 'READY' && now.agentAddress !== session.agentAddress;
    },
    20_000,
    'the agent to be restarted',
  );
  const agents = await stack().worker.backend.listAgents();
  expect(agents).toHaveLength(1);
  expect(agents[0].id).not.toBe(agent.id);
  expect((await rae.getServer(session.workspace)).sessionId).toBe(session.sessionId);
  await rae.endSession(session.sessionId);
});

test("a terminated workflow's READY row does not fool GetServer, even a moment later (within the heartbeat debounce): it starts a new session", async () => {
  const sam = await stack().client('sam');
  const workspace = stack().workspace();
  const old = await sam.getServer(workspace);
  await stack().temporal.workflow.getHandle(old.workflowId).terminate('test: operator terminated it');
  expect((await stack().worker.store.get(old.sessionId))?.phase).toBe('READY'); // stale until cleanup

  const fresh = await sam.getServer(workspace);
  expect(fresh.sessionId).not.toBe(old.sessionId);
  expect(fresh.phase).toBe('READY');
  // The new session took over the namespace; the old session's agent is gone.
  const agents = await stack().worker.backend.listAgents();
  expect(agents.map((a) => a.sessionId)).toEqual([fresh.sessionId]);
  await sam.endSession(fresh.sessionId);
});
