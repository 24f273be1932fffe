/**
 * The session on the wire (rbs.v1.Session) and back: the only place the proto's shape of a session
 * is known. proto3 has no null, so an absent agent address, failure or end reason is ''.
 */
import type { Session as SessionMessage, Session__Output as SessionMessageOutput } from '../../gen/proto/rbs/v1/Session';
import { isEndReason, isSessionPhase, type Session } from '../domain';

export type { SessionMessage };

export function sessionMessage(s: Session): SessionMessage {
  return {
    sessionId: s.sessionId,
    workflowId: s.workflowId,
    runId: s.runId,
    user: s.user,
    workspace: s.workspace,
    namespace: s.namespace,
    volume: s.volume,
    phase: s.phase,
    agentAddress: s.agentAddress ?? '',
    failureReason: s.failureReason ?? '',
    endReason: s.endReason ?? '',
    createdAtMs: s.createdAtMs,
    lastActivityAtMs: s.lastActivityAtMs,
  };
}

/** A session the orchestrator sent: a phase or end reason this client does not know is refused, naming the session. */
export function sessionFromMessage(m: SessionMessageOutput): Session {
  if (!isSessionPhase(m.phase)) throw new Error(`the orchestrator sent session ${m.sessionId} in an unknown phase ${JSON.stringify(m.phase)}`);
  if (m.endReason !== '' && !isEndReason(m.endReason)) {
    throw new Error(`the orchestrator sent session ${m.sessionId} with an unknown end reason ${JSON.stringify(m.endReason)}`);
  }
  return {
    sessionId: m.sessionId,
    workflowId: m.workflowId,
    runId: m.runId,
    user: m.user,
    workspace: m.workspace,
    namespace: m.namespace,
    volume: m.volume,
    phase: m.phase,
    agentAddress: m.agentAddress || null,
    failureReason: m.failureReason || null,
    endReason: m.endReason || null,
    createdAtMs: m.createdAtMs,
    lastActivityAtMs: m.lastActivityAtMs,
  };
}
