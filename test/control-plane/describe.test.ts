/**
 * `rbs describe`: a session's timeline read from its workflow's history, through the orchestrator.
 * Users describe their own sessions; operators anyone's; nobody else learns one exists.
 */
import * as grpc from '@grpc/grpc-js';
import { PROVISIONING_PHASES } from '../../lib/domain';
import { useStack } from '../harness/stack';

const stack = useStack();

test("a user's own session: every provisioning phase in order, each step with its summary and outcome, and why it ended", async () => {
  const wes = await stack().client('wes');
  const workspace = stack().workspace();
  const session = await wes.getServer(workspace);
  await wes.heartbeat(session.sessionId);
  const live = await wes.describeSessionTimeline(session.sessionId);
  expect(live.phases.at(-1)).toMatchObject({ phase: 'READY', ongoing: true });
  expect(live.endReason).toBe('');

  await wes.endSession(session.sessionId);
  const t = await wes.describeSessionTimeline(session.sessionId);
  expect(t.session).toMatchObject({ sessionId: session.sessionId, user: 'wes', workspace, phase: 'ENDED' });
  expect(t.phases.map((p) => p.phase)).toEqual([...PROVISIONING_PHASES, 'READY', 'ENDING', 'ENDED']);
  expect(t.phases.some((p) => p.ongoing)).toBe(false);
  expect(t.phases[0].startMs).toBeGreaterThanOrEqual(t.startedAtMs);
  expect(t.steps.find((s) => s.activity === 'syncWorkspace')).toMatchObject({ outcome: 'completed', summary: `sync \`${workspace}\` to volume \`${session.volume}\`` });
  expect(t.steps.every((s) => s.outcome === 'completed' && s.durationMs >= 0)).toBe(true);
  expect(t.endReason).toBe('ended');
  expect(t.earlierRunsOmitted).toBe(false);
});

test('another user is told the session does not exist; an operator may describe it', async () => {
  const xia = await stack().client('xia');
  const session = await xia.getServer(stack().workspace());
  const other = await stack().client('yan');
  await expect(other.describeSessionTimeline(session.sessionId)).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  await expect(other.describeSessionTimeline('not-a-session-id')).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
  const operator = await stack().client('ops', { operator: true });
  expect((await operator.describeSessionTimeline(session.sessionId)).session?.user).toBe('xia');
  await xia.endSession(session.sessionId);
});

test('a session whose workflow an operator terminated says so, with the reason given', async () => {
  const zed = await stack().client('zed');
  const session = await zed.getServer(stack().workspace());
  await stack().temporal.workflow.getHandle(session.workflowId).terminate('operator: agent stuck');
  const t = await zed.describeSessionTimeline(session.sessionId);
  expect(t.endReason).toBe('terminated: operator: agent stuck');
  expect(t.phases.at(-1)).toMatchObject({ phase: 'READY', ongoing: false });
});
