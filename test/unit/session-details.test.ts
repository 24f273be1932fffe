import { failureCode } from '../../lib/temporal/search-attributes';
import type { Session } from '../../lib/domain';
import { activitySummary, cleanupDetails, literal, tail, sessionCurrentDetails, sessionStaticDetails, sessionSummary } from '../../workflows/details';

const session: Session = {
  sessionId: '0b5c5c4e-8f3a-4d0e-9c1f-2a7d6e5b4c3a',
  workflowId: 'session-ona-rbs-0123456789abcdef0123',
  runId: 'run',
  user: 'ona',
  workspace: '/home/ona/src/app',
  namespace: 'ona-rbs-0123456789abcdef0123',
  volume: 'ona-vol-0123456789abcdef0123',
  phase: 'READY',
  agentAddress: '10.0.0.7:9443',
  failureReason: null,
  endReason: null,
  createdAtMs: Date.UTC(2026, 11, 4, 9),
  lastActivityAtMs: Date.UTC(2026, 11, 4, 10),
};

test('the summary names the user and the workspace; the static details the namespace and the volume', () => {
  expect(sessionSummary('ona', '/home/ona/src/app')).toBe('`ona`: `/home/ona/src/app`');
  expect(sessionStaticDetails(session)).toBe('Namespace: `ona-rbs-0123456789abcdef0123`\n\nVolume: `ona-vol-0123456789abcdef0123`');
});

test('READY: the agent and backend, the last activity and when it is suspended if idle', () => {
  const idle = Date.UTC(2026, 11, 4, 10, 30);
  expect(sessionCurrentDetails({ session, backend: 'kubernetes', idleDeadlineMs: idle, retentionDeadlineMs: 0 }).split('\n\n')).toEqual([
    '**READY**',
    'Agent: `10.0.0.7:9443` (kubernetes backend)',
    'Last activity: 2026-12-04T10:00:00.000Z',
    'Suspended if idle until: 2026-12-04T10:30:00.000Z',
    'Session: `0b5c5c4e-8f3a-4d0e-9c1f-2a7d6e5b4c3a`',
  ]);
});

test('SUSPENDED: no agent, and when it ends unless used again; the step under way, if any', () => {
  const suspended = { ...session, phase: 'SUSPENDED' as const, agentAddress: null };
  const details = sessionCurrentDetails({ session: suspended, backend: 'local', idleDeadlineMs: 1, retentionDeadlineMs: Date.UTC(2026, 11, 18) });
  expect(details).toContain('Backend: local');
  expect(details).toContain('Ends if not used again by: 2026-12-18T00:00:00.000Z');
  expect(details).not.toContain('Suspended if idle');
  expect(sessionCurrentDetails({ session, step: 'replacing the agent, which did not answer' })).toMatch(
    /^\*\*READY\*\*: replacing the agent, which did not answer\n/,
  );
});

test('FAILED: the reason; no deadline', () => {
  const failed = { ...session, phase: 'FAILED' as const, agentAddress: null, failureReason: 'agent restart failed: ImagePullBackOff' };
  const details = sessionCurrentDetails({ session: failed, idleDeadlineMs: 5, retentionDeadlineMs: 5 });
  expect(details).toContain('Reason: `agent restart failed: ImagePullBackOff`');
  expect(details).not.toMatch(/until|by:/);
});

test('ENDED or FAILED: why it is over, as a field beside the failure text', () => {
  const expired = { ...session, phase: 'ENDED' as const, agentAddress: null, endReason: 'expired' as const, failureReason: 'expired after retention' };
  expect(sessionCurrentDetails({ session: expired })).toContain('End reason: expired\n\nReason: `expired after retention`');
  expect(sessionCurrentDetails({ session })).not.toContain('End reason');
});

test("each session activity's summary names what it acts on; unknown activities and bad arguments get none", () => {
  const ref = { namespace: 'ona-rbs-0123', volume: 'ona-vol-0123', sessionId: 's', user: 'ona' };
  expect(activitySummary('createNamespace', ref)).toBe('create namespace `ona-rbs-0123`');
  expect(activitySummary('startAgent', ref)).toBe('start the agent in `ona-rbs-0123`');
  expect(activitySummary('syncWorkspace', { volume: 'ona-vol-0123', workspace: '/home/ona/app' })).toBe('sync `/home/ona/app` to volume `ona-vol-0123`');
  expect(activitySummary('deleteVolume', ref)).toBe('delete volume `ona-vol-0123` (backed up first where configured)');
  expect(activitySummary('killAgent', { namespace: 'ona-rbs-0123', id: '4242' })).toBe('kill the orphaned agent `ona-rbs-0123/4242`');
  expect(activitySummary('deleteSessionRow', 'abc')).toBe('delete the store row of ended session `abc`');
  expect(activitySummary('recordSession', ref)).toBeUndefined();
  expect(activitySummary('startAgent', undefined)).toBeUndefined();
  expect(activitySummary('startAgent', null)).toBeUndefined();
});

test('a cleanup pass says what it found, then what it removed, what it kept, and which shares it left to an operator', () => {
  const found = { namespaces: ['a-rbs-1'], agents: ['a-rbs-1/77'], sessionRows: [] };
  expect(cleanupDetails(found, false).split('\n\n')).toEqual(['**Found, removing**', 'Namespaces: `a-rbs-1`', 'Agents: `a-rbs-1/77`', 'Store rows: none']);
  const done = cleanupDetails(found, true, { orphans: ['projects/p/locations/l/instances/x'], unattributed: [] });
  expect(done).toMatch(/^\*\*Removed\*\*/);
  expect(done).toContain('left to an operator): `projects/p/locations/l/instances/x`');
  const volumes = cleanupDetails(found, true, { orphans: [], unattributed: [] }, { adopted: ['a-vol-1'], restarted: [], expiredRows: ['s-1', 'b-vol-2'] });
  expect(volumes).toContain('Volumes given an owner: `a-vol-1`');
  expect(volumes).toContain('Expired store rows: `s-1`, `b-vol-2`');
  expect(volumes).not.toContain('Kept');
  const spared = { namespaces: ['b-rbs-2'], agents: ['b-rbs-2/agent'] };
  expect(cleanupDetails(found, true, undefined, undefined, spared).split('\n\n')).toContain(
    "Kept, another session's by the time of removal: `b-rbs-2`, `b-rbs-2/agent`",
  );
});

test("a user's workspace path or a failure text is shown as itself, never read as markdown", () => {
  expect(literal('/home/ona/app')).toBe('`/home/ona/app`');
  expect(literal('/home/ona/[click](https://evil.example)')).toBe('`/home/ona/[click](https://evil.example)`');
  expect(literal('/home/ona/a`b')).toBe('``/home/ona/a`b``');
  expect(literal('`x`')).toBe('`` `x` ``');
  expect(literal('first\n\n# Heading\r\nlast')).toBe('`first # Heading last`');
  expect(sessionSummary('ona', '/w/<img src=x onerror=alert(1)>')).toBe('`ona`: `/w/<img src=x onerror=alert(1)>`');
  // A user name's backtick must not pair with the workspace's fence and free the path as markdown.
  expect(sessionSummary('eve`x', '/w/[click](https://evil.example)')).toBe('``eve`x``: `/w/[click](https://evil.example)`');
  const failed = { ...session, phase: 'FAILED' as const, failureReason: 'rsync: `evil`\n\n[link](https://evil.example)' };
  expect(sessionCurrentDetails({ session: failed })).toContain('Reason: ``rsync: `evil` [link](https://evil.example)``');
});

test("a long workspace path is cut from its start in the summary, by code points; a deadline past a Date's range reads never", () => {
  const deep = `/home/ona/${'dir/'.repeat(100)}app`;
  const summary = sessionSummary('ona', deep);
  expect(summary).toBe(`\`ona\`: \`…${deep.slice(-199)}\``);
  expect(tail('/w/' + '😀'.repeat(300), 200)).toBe(`…${'😀'.repeat(199)}`);
  expect(sessionCurrentDetails({ session, idleDeadlineMs: 9e15 })).toContain('Suspended if idle until: never');
});

test("a failure's search attribute is its type, deepest in the cause chain, never its text", () => {
  const workspaceGone = {
    name: 'ActivityFailure',
    cause: { name: 'ApplicationFailure', type: 'WorkspaceNotFound', message: '/home/ona/secret does not exist' },
  };
  expect(failureCode(workspaceGone)).toBe('WorkspaceNotFound');
  expect(failureCode({ name: 'ActivityFailure', cause: { name: 'TimeoutFailure' } })).toBe('TimeoutFailure');
  expect(failureCode({ name: 'ActivityFailure', cause: { name: 'ApplicationFailure', type: 'Error' } })).toBe('ActivityFailure');
  expect(failureCode({ type: 'pod said: <a href=x>relogin</a>' })).toBe('Error');
  expect(failureCode(undefined)).toBe('Error');
});
