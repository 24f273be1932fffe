/** A session's timeline, read from real histories the replay test keeps (record-histories.ts). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { temporal } from '@temporalio/proto';
import { duration, formatTimeline } from '../../cli/describe';
import { PROVISIONING_PHASES } from '../../lib/domain';
import { sessionTimeline, type Timeline } from '../../lib/temporal/timeline';

const events = (name: string) =>
  temporal.api.history.v1.History.decode(fs.readFileSync(path.join(__dirname, '..', 'replay', 'histories', `${name}.binpb`))).events;

test('a failed provisioning: each phase in order with its duration, the failing step with its error, the end reason', () => {
  const t = sessionTimeline([events('failed-provisioning@2026-12-04')], Date.now(), 'any');
  expect(t.phases.map((p) => p.phase)).toEqual([...PROVISIONING_PHASES, 'FAILED']);
  expect(t.phases.every((p, i) => i === 0 || p.startMs === t.phases[i - 1].startMs + t.phases[i - 1].durationMs)).toBe(true);
  expect(t.phases.some((p) => p.ongoing)).toBe(false);
  expect(t.phases[0].startMs).toBeGreaterThanOrEqual(t.startedMs);
  const sync = t.steps.find((s) => s.activity === 'syncWorkspace')!;
  expect(sync).toMatchObject({ outcome: 'failed', summary: expect.stringMatching(/^sync `\/tmp\/.*` to volume `recorder-vol-/) });
  expect(sync.failure).toMatch(/does not exist or is not a directory/);
  // The saga's undo follows the failure.
  expect(t.steps.slice(-2).map((s) => [s.activity, s.outcome])).toEqual([
    ['stopAgent', 'completed'],
    ['deleteNamespace', 'completed'],
  ]);
  expect(t.endReason).toBe('provisioning-failed');
});

test('a suspended session woken by GetServer: the wake is counted in the phase it woke, and the resume steps follow', () => {
  const t = sessionTimeline([events('lifecycle@2026-12-04')], Date.now(), 'any');
  expect(t.phases.map((p) => p.phase)).toEqual(['READY', 'SUSPENDING', 'SUSPENDED', 'RESUMING', 'READY', 'ENDING', 'ENDED']);
  const suspended = t.phases.find((p) => p.phase === 'SUSPENDED')!;
  expect({ heartbeats: suspended.heartbeats, getServerCalls: suspended.getServerCalls }).toEqual({ heartbeats: 0, getServerCalls: 1 });
  expect(suspended.lastWakeMs).toBeGreaterThanOrEqual(suspended.startMs);
  expect(t.steps.map((s) => s.activity)).toEqual([
    'issueAgentCredentials',
    'stopAgent',
    'issueAgentCredentials',
    'startAgent',
    'waitForAgent',
    'deleteNamespace',
  ]);
  expect(t.endReason).toBe('ended');
});

test('a session still running: its last phase is ongoing until now; an unfinished step is running', () => {
  const all = events('failed-provisioning@2026-12-04');
  const cut = all.findIndex((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'syncWorkspace');
  const now = Date.now();
  const t = sessionTimeline([all.slice(0, cut + 1)], now, 'any');
  expect(t.phases.at(-1)).toMatchObject({ phase: 'PROVISIONING_SYNC', ongoing: true });
  expect(t.phases.at(-1)!.startMs + t.phases.at(-1)!.durationMs).toBe(now);
  expect(t.steps.at(-1)).toMatchObject({ activity: 'syncWorkspace', outcome: 'running' });
  expect(t.endReason).toBe('');
});

test('hostile or odd events are read without throwing: bad payloads, unknown scheduled ids, no events', () => {
  const bad: temporal.api.history.v1.IHistoryEvent[] = [
    { upsertWorkflowSearchAttributesEventAttributes: { searchAttributes: { indexedFields: { RbsSessionPhase: { data: Buffer.from('{not json') } } } } },
    { activityTaskCompletedEventAttributes: {} },
    { workflowExecutionTerminatedEventAttributes: { reason: 'operator: stuck' } },
  ];
  expect(sessionTimeline([bad], 0, 's')).toEqual({
    startedMs: 0,
    phases: [],
    steps: [],
    stepsOmitted: 0,
    endReason: 'terminated: operator: stuck',
    commands: [],
  });
  expect(sessionTimeline([], 5, 's')).toEqual({ startedMs: 0, phases: [], steps: [], stepsOmitted: 0, endReason: '', commands: [] });
});

test('rbs describe prints the phases, what kept the session awake, and each step with its outcome', () => {
  const t: Timeline = sessionTimeline([events('lifecycle@2026-12-04')], Date.now(), 'any');
  const text = formatTimeline({
    session: { sessionId: 's-1', user: 'ona', workspace: '/w', phase: 'ENDED', failureReason: '' } as never,
    startedAtMs: t.startedMs,
    phases: t.phases.map((p) => ({ ...p, lastWakeMs: p.lastWakeMs ?? 0 })),
    steps: t.steps,
    endReason: t.endReason,
    earlierRunsOmitted: false,
    commands: [{ verb: 'build', endedAtMs: t.startedMs + 5000, durationMs: 2500, exitCode: 1 }],
    stepsOmitted: 0,
  });
  expect(text).toMatch(/\nCOMMAND AT +TOOK +EXIT +COMMAND\n\+2\.500 s +2\.500 s +1 +build$/);
  expect(text).toMatch(/^session s-1 of ona, workspace \/w\nstarted \S+; now ENDED \(ended\)\n/);
  expect(text).toMatch(/\nSUSPENDED +\+\d\.\d{3} s +\d\.\d{3} s +1 GetServer call, the last at \S+\n/);
  expect(text).toMatch(/\n\+\d\.\d{3} s +\d\.\d{3} s +completed +start the agent in `recorder-rbs-/);
  expect([duration(1234), duration(125_000), duration(3 * 3600_000 + 7 * 60_000)]).toEqual(['1.234 s', '2 min 05 s', '3 h 07 min']);
});

test('commands come from the heartbeat signals that report one; a signal sent straight to Temporal with anything else is skipped', () => {
  const payload = (value: unknown) => ({ metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from(JSON.stringify(value)) });
  const signal = (seconds: number, ...args: unknown[]) =>
    temporal.api.history.v1.HistoryEvent.fromObject({
      eventTime: { seconds, nanos: 0 },
      workflowExecutionSignaledEventAttributes: { signalName: 'heartbeat', input: { payloads: args.map(payload) } },
    });
  const t = sessionTimeline(
    [
      [
        signal(10, 's', { verb: 'build', durationMs: 1500, exitCode: 0 }),
        signal(11, 's'),
        signal(12, 's', { verb: '<img src=x>', durationMs: 1, exitCode: 0 }),
        signal(13, 's', { verb: 'test', durationMs: -5, exitCode: 3 }),
        signal(14, 's', 'not a report'),
        signal(15, 's', { verb: 'test', durationMs: 900, exitCode: 3 }),
        signal(16, 'another-session', { verb: 'build', durationMs: 1, exitCode: 0 }),
      ],
    ],
    0,
    's',
  );
  expect(t.commands).toEqual([
    { verb: 'build', endedAtMs: 10_000, durationMs: 1500, exitCode: 0 },
    { verb: 'test', endedAtMs: 15_000, durationMs: 900, exitCode: 3 },
  ]);
  const many = Array.from({ length: 25 }, (_, i) => signal(i, 's', { verb: 'build', durationMs: i, exitCode: 0 }));
  expect(sessionTimeline([many], 0, 's').commands.map((c) => c.durationMs)).toEqual(Array.from({ length: 20 }, (_, i) => i + 5));
});

test("runs are read each on their own: a later run's event ids, which start again at 1, never overwrite an earlier run's steps", () => {
  const first = events('failed-provisioning@2026-12-04');
  const second = events('lifecycle@2026-12-04');
  const scheduled = (run: typeof first) =>
    run.filter((e) => e.activityTaskScheduledEventAttributes).map((e) => e.activityTaskScheduledEventAttributes!.activityType!.name);
  const t = sessionTimeline([first, second], Date.now(), 'any');
  expect(t.steps.map((s) => s.activity)).toEqual([...scheduled(first), ...scheduled(second)]);
  expect(t.steps.find((s) => s.activity === 'syncWorkspace')).toMatchObject({ outcome: 'failed' });
});

test('a timeline lists the last steps only, and says how many went before', () => {
  const schedule = (id: number) =>
    temporal.api.history.v1.HistoryEvent.fromObject({
      eventId: id,
      eventTime: { seconds: id },
      activityTaskScheduledEventAttributes: { activityType: { name: 'probeAgent' } },
    });
  const t = sessionTimeline([Array.from({ length: 250 }, (_, i) => schedule(i + 1))], 0, 's');
  expect({ listed: t.steps.length, omitted: t.stepsOmitted, first: t.steps[0].startMs }).toEqual({ listed: 200, omitted: 50, first: 51_000 });
});

test('rbs describe prints text from the history on one line, without terminal control codes', () => {
  const text = formatTimeline({
    session: { sessionId: 's-1', user: 'ona', workspace: '/w', phase: 'FAILED', failureReason: 'pod said:\n\u001b]0;owned\u0007\u001b[2J' } as never,
    startedAtMs: 0,
    phases: [],
    steps: [{ activity: 'startAgent', summary: 'start', startMs: 0, durationMs: 1, attempts: 3, outcome: 'failed', failure: 'boom\r\u009b31m' }],
    endReason: 'terminated: \u001b[31mred',
    earlierRunsOmitted: false,
    commands: [],
    stepsOmitted: 0,
  });
  expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
  expect(text).toContain('reason: pod said: ?]0;owned??[2J');
  expect(text).toContain('failed (attempt 3)  start: boom ?31m');
});

test('local activities: a summarized one is a step in its place among the others; store writes are not steps; each step lies within the phase it belongs to', () => {
  const history = events('failed-provisioning@2026-12-05-local-steps');
  const t = sessionTimeline([history], Date.now(), 'any');
  expect(t.steps.map((s) => s.activity)).toEqual([
    'createNamespace',
    'claimVolume',
    'bindVolume',
    'issueAgentCredentials',
    'startAgent',
    'waitForAgent',
    'syncWorkspace',
    'stopAgent',
    'deleteNamespace',
    'releaseVolume',
  ]);
  expect(t.steps.find((s) => s.activity === 'bindVolume')).toMatchObject({
    outcome: 'completed',
    attempts: 1,
    summary: expect.stringMatching(/^bind volume `recorder-vol-/),
  });
  expect(t.steps.every((s) => s.durationMs >= 0)).toBe(true);
  // A phase entered after local activities begins where they ended, not when the task's commands were written.
  const phaseAt = (t: Timeline, ms: number) => t.phases.filter((p) => p.startMs <= ms).at(-1)?.phase;
  const inPhase: Array<[string, string]> = [
    ['createNamespace', 'PROVISIONING_NAMESPACE'],
    ['bindVolume', 'PROVISIONING_VOLUME'],
    ['issueAgentCredentials', 'PROVISIONING_CREDENTIALS'],
    ['startAgent', 'PROVISIONING_AGENT'],
  ];
  for (const [activity, phase] of inPhase) expect([activity, phaseAt(t, t.steps.find((s) => s.activity === activity)!.startMs)]).toEqual([activity, phase]);
  const resumed = sessionTimeline([events('lifecycle@2026-12-05-local-steps')], Date.now(), 'any');
  const resumeCredentials = resumed.steps.filter((s) => s.activity === 'issueAgentCredentials').at(-1)!;
  expect(phaseAt(resumed, resumeCredentials.startMs)).toBe('RESUMING');
});

describe('local activity markers anyone who reaches Temporal could write', () => {
  const summary = { data: Buffer.from(JSON.stringify('start the agent')) };
  const data = (value: unknown) => ({ data: { payloads: [{ data: Buffer.from(JSON.stringify(value)) }] } });
  const at = (seconds: number) => ({ seconds });
  const marker = (id: number, details: object, failure?: object, writtenAt = 100) =>
    temporal.api.history.v1.HistoryEvent.fromObject({
      eventId: id,
      eventTime: at(writtenAt),
      userMetadata: { summary },
      markerRecordedEventAttributes: { markerName: 'core_local_activity', details, ...(failure ? { failure } : {}) },
    });
  const done = { activity_type: 'startAgent', attempt: 3, complete_time: { seconds: 99, nanos: 500_000_000 } };
  const run = (...markers: temporal.api.history.v1.HistoryEvent[]) =>
    sessionTimeline(
      [
        [
          temporal.api.history.v1.HistoryEvent.fromObject({ eventId: 1, eventTime: at(90), workflowExecutionStartedEventAttributes: {} }),
          temporal.api.history.v1.HistoryEvent.fromObject({ eventId: 2, eventTime: at(99), workflowTaskStartedEventAttributes: {} }),
          ...markers,
        ],
      ],
      200_000,
      's',
    ).steps.map((s) => [s.activity, s.outcome, s.attempts, s.failure, s.startMs, s.durationMs]);

  test('outcomes: failed with its message, cancelled, timed out; an attempt that backs off is no step of its own', () => {
    expect(
      run(
        marker(3, data(done), { message: 'quota exceeded' }),
        marker(4, data({ ...done, attempt: 1 }), { message: 'cancelled', canceledFailureInfo: {} }),
        marker(5, data({ ...done, attempt: 1 }), { message: 'late', timeoutFailureInfo: {} }),
        marker(6, data({ ...done, backoff: { attempt: 4, backoff_duration: { seconds: 61 } } }), { message: 'again' }),
      ),
    ).toEqual([
      ['startAgent', 'failed', 3, 'quota exceeded', 99_000, 500],
      ['startAgent', 'cancelled', 1, 'cancelled', 99_500, 0],
      ['startAgent', 'timed out', 1, 'late', 99_500, 0],
    ]);
  });

  test('a step that outlived its workflow task, or was retried, began when it was first scheduled, never before its run', () => {
    expect(run(marker(3, data({ ...done, original_schedule_time: { seconds: 95, nanos: 0 } })))).toEqual([['startAgent', 'completed', 3, '', 95_000, 4_500]]);
    expect(run(marker(3, data({ ...done, original_schedule_time: { seconds: 1, nanos: 0 } })))[0].slice(4)).toEqual([90_000, 9_500]);
    // Scheduled just before the task: its place in the task is the better guess.
    expect(run(marker(3, data({ ...done, original_schedule_time: { seconds: 98, nanos: 500_000_000 } })))[0].slice(4)).toEqual([99_000, 500]);
  });

  test('odd data is no step, or bounded: never a throw, a negative or endless duration, or a time past what a Date holds', () => {
    const steps = run(
      marker(3, data({ activity_type: 7 })),
      marker(4, { data: { payloads: [{ data: Buffer.from('{not json') }] } }),
      marker(5, {}),
      marker(6, data({ ...done, activity_type: 'x'.repeat(201) })),
      marker(7, data({ ...done, attempt: 2.5, complete_time: { seconds: 1.7e305, nanos: 0 } })),
      marker(8, data({ ...done, attempt: 1e300, complete_time: { seconds: 99, nanos: 1e9 } })),
      marker(9, data({ ...done, attempt: -1, complete_time: { seconds: 50, nanos: 0 } })),
      marker(10, data({ ...done, complete_time: { seconds: 500, nanos: 0 } }), undefined, 101),
    );
    expect(steps).toEqual([
      ['startAgent', 'completed', 1, '', 99_000, 1_000], // no sensible completion: when its marker was written
      ['startAgent', 'completed', 1, '', 100_000, 0],
      ['startAgent', 'completed', 1, '', 50_000, 0],
      ['startAgent', 'completed', 3, '', 100_000, 1_000], // done no later than its marker was written
    ]);
  });
});
