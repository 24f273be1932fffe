/**
 * The store is the session workflow's projection, versioned: a record that arrives late (a retried
 * write, a worker that froze in the middle of one and woke) never replaces what the workflow wrote since.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import { createRecordActivities } from '../../activities/records';
import type { Session } from '../../lib/domain';
import { useStack } from '../harness/stack';

const stack = useStack();

test("a late record of an earlier phase, after READY was recorded, changes nothing: the row stays READY, GetServer's fast path still serves", async () => {
  const ada = await stack().client('ada');
  const workspace = stack().workspace();
  const ready = await ada.getServer(workspace);
  const row = (await stack().worker.store.get(ready.sessionId))!;
  expect(row).toMatchObject({ phase: 'READY', agentAddress: ready.agentAddress });
  expect(row.seq).toBeGreaterThan(1);

  const { recordSession } = createRecordActivities(stack().worker.store);
  const view: Session = {
    ...row,
    phase: 'PROVISIONING_SYNC',
    agentAddress: null,
    lastActivityAtMs: 0,
  };
  const env = new MockActivityEnvironment();
  // Decided at the same moment as an earlier write, and at an earlier moment: both older than READY.
  await env.run(recordSession, view, { generation: row.generation, seq: row.seq - 1 });
  await env.run(recordSession, { ...view, phase: 'PROVISIONING_AGENT' } as Session, { generation: row.generation - 1, seq: row.seq + 5 });
  expect(await stack().worker.store.get(ready.sessionId)).toEqual(row);

  const again = await ada.getServer(workspace);
  expect(again).toMatchObject({ sessionId: ready.sessionId, phase: 'READY', agentAddress: ready.agentAddress });
});
