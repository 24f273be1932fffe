import { useStack } from '../harness/stack';

const stack = useStack();

test('50 concurrent GetServer calls for one user and workspace converge on one session', async () => {
  const dave = await stack().client('dave');
  const workspace = stack().workspace();
  const sessions = await Promise.all(Array.from({ length: 50 }, () => dave.getServer(workspace)));

  expect(new Set(sessions.map((s) => s.sessionId)).size).toBe(1);
  expect(new Set(sessions.map((s) => s.agentAddress)).size).toBe(1);
  expect(sessions.every((s) => s.phase === 'READY')).toBe(true);
  const [session] = sessions;

  const runs = [];
  for await (const wf of stack().temporal.workflow.list({ query: `WorkflowId = '${session.workflowId}'` })) runs.push(wf);
  expect(runs).toHaveLength(1);
  expect((await stack().worker.backend.listNamespaces()).map((n) => n.namespace)).toEqual([session.namespace]);
  expect(await stack().worker.backend.listAgents()).toHaveLength(1);
  await dave.endSession(session.sessionId);
});
