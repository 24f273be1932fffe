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
  expect(t.steps.find((s) => s.activity === 'syncWorkspace')).toMatchObject({
    outcome: 'completed',
    summary: `sync \`${workspace}\` to volume \`${session.volume}\``,
  });
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

test('commands its proxy reports are listed, the last ones oldest first; a hostile or foreign report is refused and lands nowhere', async () => {
  const amy = await stack().client('amy');
  const session = await amy.getServer(stack().workspace());
  await amy.heartbeat(session.sessionId, { verb: 'build', durationMs: 1234, exitCode: 0 });
  await amy.heartbeat(session.sessionId, { verb: 'test', durationMs: 99, exitCode: 3 });
  for (const bad of [
    { verb: '<img src=x onerror=alert(1)>', durationMs: 1, exitCode: 0 },
    { verb: 'build', durationMs: -1, exitCode: 0 },
    { verb: 'build', durationMs: 1, exitCode: 256 },
    { verb: '', durationMs: 1, exitCode: 0 },
  ]) {
    await expect(amy.heartbeat(session.sessionId, bad)).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
  }
  const other = await stack().client('bob');
  await expect(other.heartbeat(session.sessionId, { verb: 'build', durationMs: 5, exitCode: 1 })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  const t = await amy.describeSessionTimeline(session.sessionId);
  expect(t.commands.map(({ verb, durationMs, exitCode }) => ({ verb, durationMs, exitCode }))).toEqual([
    { verb: 'build', durationMs: 1234, exitCode: 0 },
    { verb: 'test', durationMs: 99, exitCode: 3 },
  ]);
  expect(t.commands[1].endedAtMs).toBeGreaterThanOrEqual(t.commands[0].endedAtMs);
  // Reports are activity: each reached the workflow at once, past the heartbeat debounce.
  expect(t.phases.find((p) => p.phase === 'READY')!.heartbeats).toBeGreaterThanOrEqual(2);
  await amy.endSession(session.sessionId);
});
