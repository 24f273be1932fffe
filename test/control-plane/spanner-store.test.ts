import { randomUUID } from 'node:crypto';
import { useStack } from '../harness/stack';
import { waitFor } from '../harness/wait';

// The same control plane with Cloud Spanner (the emulator) as its session store.
const stack = useStack({ RBS_STORE: 'spanner', RBS_SPANNER_INSTANCE: 'rbs-test', RBS_SPANNER_DATABASE: `cp-${randomUUID().slice(0, 8)}` });

test('sessions on the Spanner store: get-server, list, operators filter by search attribute, end', async () => {
  const nia = await stack().client('nia');
  const session = await nia.getServer(stack().workspace());
  expect(session.phase).toBe('READY');
  expect(await nia.listSessions()).toEqual([expect.objectContaining({ sessionId: session.sessionId, phase: 'READY' })]);

  // What an operator types in the Temporal UI.
  const query = `RbsSessionPhase = 'READY' AND RbsUser = 'nia'`;
  await waitFor(
    async () => {
      for await (const wf of stack().temporal.workflow.list({ query })) if (wf.workflowId === session.workflowId) return true;
      return false;
    },
    10_000,
    'the session to be listed by its search attributes',
  );

  expect((await nia.endSession(session.sessionId)).phase).toBe('ENDED');
  expect((await stack().worker.store.get(session.sessionId))?.phase).toBe('ENDED');
});
