import type { Session } from '../../lib/domain';
import { sessionFromMessage, sessionMessage } from '../../lib/grpc/session-message';
import type { Session__Output } from '../../gen/proto/rbs/v1/Session';

const ended: Session = {
  sessionId: 's-1',
  workflowId: 'rbs-session-ona-rbs-0123',
  runId: 'run-2',
  user: 'ona',
  workspace: '/home/ona/src',
  namespace: 'ona-rbs-0123',
  volume: 'ona-vol-0123',
  phase: 'ENDED',
  agentAddress: null,
  failureReason: 'expired after retention',
  endReason: 'expired',
  createdAtMs: 1_700_000_000_000,
  lastActivityAtMs: 1_700_000_600_000,
};

/** What the client decodes: every field present, as proto-loader's defaults give them. */
const wire = (s: Session) => sessionMessage(s) as Session__Output;

test.each<[string, Partial<Session>]>([
  ['an ended session with its end reason and no agent', {}],
  ['a READY session with its agent and nothing over', { phase: 'READY', agentAddress: '10.0.0.7:9443', failureReason: null, endReason: null }],
])('a session crosses the wire and back unchanged, nulls included: %s', (_, change) => {
  const session = { ...ended, ...change };
  expect(sessionFromMessage(wire(session))).toEqual(session);
});

test('on the wire, proto3 has no null: an absent agent, failure or end reason is the empty string', () => {
  expect(sessionMessage({ ...ended, failureReason: null, endReason: null })).toMatchObject({ agentAddress: '', failureReason: '', endReason: '' });
});

test.each([
  ['an unknown phase', { phase: 'OWNED' }, /session s-1 in an unknown phase "OWNED"/],
  ['the unspecified phase', { phase: 'SESSION_PHASE_UNSPECIFIED' }, /unknown phase "SESSION_PHASE_UNSPECIFIED"/],
  ['an unknown end reason', { endReason: '\u001b[2Jpwned' }, /session s-1 with an unknown end reason "\\u001b\[2Jpwned"/],
])('a message the client cannot read is refused, naming the session: %s', (_, change, message) => {
  expect(() => sessionFromMessage({ ...wire(ended), ...change } as Session__Output)).toThrow(message);
});
