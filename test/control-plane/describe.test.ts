/**
 * `rbs describe`: a session's timeline read from its workflow's history, through the orchestrator.
 * Users describe their own sessions; operators anyone's; nobody else learns one exists.
 */
import * as grpc from '@grpc/grpc-js';
import { PROVISIONING_PHASES } from '../../lib/domain';
import { useStack } from '../harness/stack';
import { waitFor } from '../harness/wait';

// A short history limit: a session continues as new after a few commands, as a busy one would after weeks.
const stack = useStack({ RBS_MAX_HISTORY_EVENTS: '100' });

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

test('a session that continued as new: its timeline spans its runs, one READY throughout, every command kept', async () => {
  const cal = await stack().client('cal');
  const session = await cal.getServer(stack().workspace());
  const handle = stack().temporal.workflow.getHandle(session.workflowId);
  const firstRun = (await handle.describe()).runId;
  for (let i = 0; i < 15; i++) await cal.heartbeat(session.sessionId, { verb: 'build', durationMs: i, exitCode: 0 });
  await waitFor(async () => (await handle.describe()).runId !== firstRun, 20_000, 'the session to continue as new');
  await waitFor(async () => (await stack().worker.store.get(session.sessionId))?.runId !== firstRun, 10_000, 'the store to name the new run');
  // A signal shows in the history once the workflow task in flight when it came has completed.
  const described = async (count: number) => {
    let timeline = await cal.describeSessionTimeline(session.sessionId);
    await waitFor(
      async () => (timeline = await cal.describeSessionTimeline(session.sessionId)).commands.length >= count,
      10_000,
      `the timeline to show ${count} commands`,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; it shows ${timeline.commands.map((c) => c.durationMs).join(',')}`);
    });
    return timeline;
  };
  const t = await described(15);
  expect(t.phases.map((p) => p.phase)).toEqual([...PROVISIONING_PHASES, 'READY']);
  expect(t.commands.map((c) => c.durationMs)).toEqual(Array.from({ length: 15 }, (_, i) => i));
  expect(t.steps[0].activity).toBe('createNamespace'); // from the first run
  expect(t.earlierRunsOmitted).toBe(false);

  // Right after a continue-as-new, the store still names the old run: the runs after it are read too.
  await cal.heartbeat(session.sessionId, { verb: 'test', durationMs: 15, exitCode: 0 });
  await waitFor(
    async () => (await stack().worker.store.get(session.sessionId))?.runId === (await handle.describe()).runId,
    10_000,
    'the session to settle in its latest run',
  );
  const row = (await stack().worker.store.get(session.sessionId))!;
  expect(row.runId).not.toBe(firstRun);
  // Written as the workflow would (a newer version), naming the first run; the workflow's next write is newer still.
  await stack().worker.store.put({ ...row, runId: firstRun, seq: row.seq + 1 });
  const stale = await described(16);
  expect(stale.commands.map((c) => c.durationMs)).toEqual(Array.from({ length: 16 }, (_, i) => i));
  expect(stale.steps[0].activity).toBe('createNamespace');
  await stack().worker.store.put({ ...row, seq: row.seq + 2 });
  await cal.endSession(session.sessionId);
});

test("a workspace's next session reuses the workflow id: each session's timeline is its own", async () => {
  const dee = await stack().client('dee');
  const workspace = stack().workspace();
  const first = await dee.getServer(workspace);
  await dee.heartbeat(first.sessionId, { verb: 'build', durationMs: 1, exitCode: 0 });
  await dee.endSession(first.sessionId);
  const second = await dee.getServer(workspace);
  expect(second.workflowId).toBe(first.workflowId);
  await dee.heartbeat(second.sessionId, { verb: 'test', durationMs: 2, exitCode: 3 });
  const a = await dee.describeSessionTimeline(first.sessionId);
  const b = await dee.describeSessionTimeline(second.sessionId);
  expect({ end: a.endReason, last: a.phases.at(-1)?.phase, commands: a.commands.map((c) => c.verb) }).toEqual({
    end: 'ended',
    last: 'ENDED',
    commands: ['build'],
  });
  expect({ end: b.endReason, first: b.phases[0].phase, last: b.phases.at(-1)?.phase, commands: b.commands.map((c) => c.verb) }).toEqual({
    end: '',
    first: 'PROVISIONING_NAMESPACE',
    last: 'READY',
    commands: ['test'],
  });
  await dee.endSession(second.sessionId);
});

test('one timeline at a time per user: a second describe while one is read is refused, not queued', async () => {
  const eli = await stack().client('eli');
  const session = await eli.getServer(stack().workspace());
  const results = await Promise.allSettled(Array.from({ length: 8 }, () => eli.describeSessionTimeline(session.sessionId)));
  expect(results.some((r) => r.status === 'fulfilled')).toBe(true);
  expect(results.some((r) => r.status === 'rejected')).toBe(true);
  for (const r of results) if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED });
  expect((await eli.describeSessionTimeline(session.sessionId)).session?.sessionId).toBe(session.sessionId);
  await eli.endSession(session.sessionId);
});
