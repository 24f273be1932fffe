/**
 * The session workflow's messages, shared by the orchestrator (client side) and the workflow.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { CommandReport, Session, SessionPlacement, SessionTimeouts } from '../lib/domain';

export type { SessionTimeouts };

/** What a run hands to the next one across continue-as-new. */
export interface CarriedSession {
  sessionId: string;
  phase: 'READY' | 'SUSPENDED';
  agentAddress: string | null;
  createdAtMs: number;
  lastActivityAtMs: number;
  /** How many store writes the session made so far (each versions its row). */
  seq?: number;
}

/**
 * What starts a session: who and where from, nothing else. Placement and timeouts are what runs
 * before 'derive-placement' were given; a current run derives them in the worker and ignores them.
 */
export interface SessionInput extends Partial<SessionPlacement> {
  user: string;
  workspace: string;
  timeouts?: SessionTimeouts;
  /** Only from a run that continued as new; ignored in a run that did not. */
  carried?: CarriedSession;
}

/** What a caller is told of a session that FAILED: by its workflow's update, or by the orchestrator once it ended. */
export const sessionFailedMessage = (session: Pick<Session, 'sessionId' | 'failureReason'>) => `session ${session.sessionId} failed: ${session.failureReason}`;

/** Failure types the orchestrator maps to gRPC statuses. */
export const FAILURE = {
  SESSION_FAILED: 'SessionFailed',
  SESSION_ENDING: 'SessionEnding',
  SESSION_NOT_FOUND: 'SessionNotFound',
  /** The workflow was started under an id that is not its (user, workspace)'s: refused outright. */
  PLACEMENT_MISMATCH: 'PlacementMismatch',
  WORKSPACE_NOT_FOUND: 'WorkspaceNotFound',
  QUOTA_EXCEEDED: 'QuotaExceeded',
  /** The agent cannot start, for good; details[0] is the backend's AgentStartFailure reason. */
  AGENT_START_FAILED: 'AgentStartFailed',
  /** The session's namespace was removed from under it: no retry brings it back. */
  NAMESPACE_GONE: 'NamespaceGone',
  /** The volume cannot be deleted as configured (it could not be backed up first): its owner keeps it. */
  VOLUME_NOT_REMOVABLE: 'VolumeNotRemovable',
} as const;

/**
 * Start-or-attach for `user`, the verified caller: resolves once the session is READY (resuming it
 * if suspended). A session of anyone else refuses, even under a colliding workflow id. With
 * `unreachableAgent`, the agent address the caller could not reach: if that is still the session's
 * agent, the session probes it first and replaces it if it does not answer.
 */
export const getServerUpdate = defineUpdate<Session, [user: string, unreachableAgent?: string]>('getServer');
/**
 * Ends the session with this id; resolves once it has ENDED. The id guards against ending a newer
 * session that took the same workflow id.
 */
export const endUpdate = defineUpdate<Session, [sessionId: string]>('end');
/**
 * Any sign of use of the session with this id: keeps it from going idle. `command`: one that just
 * ended there, kept only in the history, where `rbs describe` reads it (lib/temporal/timeline.ts).
 */
export const heartbeatSignal = defineSignal<[sessionId: string, command?: CommandReport]>('heartbeat');
export const sessionQuery = defineQuery<Session>('session');
