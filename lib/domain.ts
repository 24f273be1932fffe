/**
 * The build-session domain model, shared by the orchestrator, the workflows, the activities and
 * the stores. Pure types and constants only: workflow code imports this module, so it must not
 * touch Node built-ins.
 */

/** Provisioning steps, in saga order. Each is also a phase an operator can filter on. */
export const PROVISIONING_PHASES = [
  'PROVISIONING_NAMESPACE',
  'PROVISIONING_VOLUME',
  'PROVISIONING_CREDENTIALS',
  'PROVISIONING_AGENT',
  'PROVISIONING_AGENT_READY',
  'PROVISIONING_SYNC',
] as const;

export const SESSION_PHASES = [...PROVISIONING_PHASES, 'READY', 'SUSPENDING', 'SUSPENDED', 'RESUMING', 'ENDING', 'ENDED', 'FAILED'] as const;

export type ProvisioningPhase = (typeof PROVISIONING_PHASES)[number];
export type SessionPhase = (typeof SESSION_PHASES)[number];

/** What a phase means to someone waiting for their session (the CLI's and the proxy's progress). */
export const WAITING_FOR: Readonly<Partial<Record<SessionPhase, string>>> = {
  PROVISIONING_NAMESPACE: 'creating the session namespace',
  PROVISIONING_VOLUME: 'binding the workspace volume',
  PROVISIONING_CREDENTIALS: 'issuing session credentials',
  PROVISIONING_AGENT: 'starting the agent',
  PROVISIONING_AGENT_READY: 'waiting for the agent',
  PROVISIONING_SYNC: 'syncing the workspace',
  RESUMING: 'resuming the suspended session',
  SUSPENDING: 'waiting for the session to finish suspending',
};

/** Phases after which the session's workflow has finished and nothing of it runs. */
export const TERMINAL_PHASES: readonly SessionPhase[] = ['ENDED', 'FAILED'];

export function isTerminal(phase: SessionPhase): boolean {
  return TERMINAL_PHASES.includes(phase);
}

export function isSessionPhase(value: string): value is SessionPhase {
  return (SESSION_PHASES as readonly string[]).includes(value);
}

/**
 * Why a session is over (ENDED or FAILED), as a field rather than read out of its failure text:
 * operators filter on it (the RbsEndReason search attribute).
 */
export const END_REASONS = [
  /** Its user (or an operator) ended it. */
  'ended',
  /** Suspended for the retention period with nobody wanting it back: its volume went too. */
  'expired',
  /** Its workflow was cancelled. */
  'cancelled',
  /** Provisioning failed for good. */
  'provisioning-failed',
  /** A suspended or unresponsive agent could not be started again. */
  'agent-restart-failed',
] as const;
export type EndReason = (typeof END_REASONS)[number];

/** A command that ended on a session, as its proxy reports it (rbs describe lists the last ones). */
export interface CommandReport {
  /** Bazel's command: build, test, run… */
  verb: string;
  durationMs: number;
  exitCode: number;
}

/** The reason an expired session ends with: its volume was deleted (the cleanup and the limits read this). */
export const EXPIRY_REASON = 'expired after retention';

/** Where a session runs, derived from (user, workspace) by lib/naming. */
export interface SessionPlacement {
  /** `<sanitized_user>-rbs-<hash>`: a DNS-1123 label. */
  namespace: string;
  /** Per-(user, workspace) volume name; outlives sessions. */
  volume: string;
}

/** A session as the session store keeps it. */
export interface SessionRecord extends SessionPlacement {
  sessionId: string;
  workflowId: string;
  /** The workflow run that owns the session now (continue-as-new moves it on). */
  runId: string;
  user: string;
  /** Absolute workspace path on the developer's machine. */
  workspace: string;
  phase: SessionPhase;
  /** host:port of the agent while READY, else null. */
  agentAddress: string | null;
  failureReason: string | null;
  createdAt: Date;
  updatedAt: Date;
  lastActivityAt: Date;
}

/** How long a session lives, idles and is looked after: set by the operator (lib/config.ts), carried by the workflow. */
export interface SessionTimeouts {
  /** READY with no activity for this long → SUSPENDED. */
  idleTimeoutMs: number;
  /** SUSPENDED for this long → the session expires and everything, volume included, goes. */
  retentionMs: number;
  /** Continue-as-new once the history has this many events. */
  maxHistoryEvents: number;
  /** How often a READY session checks that its agent still answers (and restarts it if not). */
  agentProbeIntervalMs: number;
}
