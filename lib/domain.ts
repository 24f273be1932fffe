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

export function isProvisioning(phase: SessionPhase): phase is ProvisioningPhase {
  return (PROVISIONING_PHASES as readonly string[]).includes(phase);
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
  /** Suspended for the retention period with nobody wanting it back (its volume outlives it: workflows/volume.ts). */
  'expired',
  /** Its workflow was cancelled. */
  'cancelled',
  /** Provisioning failed for good. */
  'provisioning-failed',
  /** A suspended or unresponsive agent could not be started again. */
  'agent-restart-failed',
] as const;
/** Readers refuse a reason they do not know (lib/store, lib/grpc/session-message): a new one reaches orchestrators and CLIs before any worker writes it. */
export type EndReason = (typeof END_REASONS)[number];

export function isEndReason(value: string): value is EndReason {
  return (END_REASONS as readonly string[]).includes(value);
}

/** A command that ended on a session, as its proxy reports it (rbs describe lists the last ones). */
export interface CommandReport {
  /** Bazel's command: build, test, run… */
  verb: string;
  durationMs: number;
  exitCode: number;
}

/**
 * The reason an expired session ends with. Sessions from before volumes had an owner of their own
 * deleted their volume as they expired: for volumes without a record, this row says it is gone.
 */
export const EXPIRY_REASON = 'expired after retention';

/** Where a session runs, derived from (user, workspace) by lib/naming. */
export interface SessionPlacement {
  /** `<sanitized_user>-rbs-<hash>`: a DNS-1123 label. */
  namespace: string;
  /** Per-(user, workspace) volume name; outlives sessions. */
  volume: string;
}

/**
 * A session, as its workflow knows it: the one session type. Workflow queries and results,
 * orchestrator answers, the client's view and store rows (SessionRecord) are all this shape. Times
 * here and everywhere in RBS are epoch milliseconds (workflow arguments and results travel as
 * JSON); only the stores' columns and what a person reads are dates.
 */
export interface Session extends SessionPlacement {
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
  /** Why it is over, once ENDED or FAILED; null before, and in sessions that were over before end reasons existed. */
  endReason: EndReason | null;
  createdAtMs: number;
  lastActivityAtMs: number;
}

/** A session as the store keeps it: the workflow's projection, with the row's version. Only the workflow writes it. */
export interface SessionRecord extends Session {
  /** When the row was last written (by the store's clock). */
  updatedAtMs: number;
  /**
   * The row's version, which only grows: the workflow time its workflow decided on the write at,
   * then a count of its writes (carried across continue-as-new). A late or retried write, from a
   * worker that froze mid-write say, never replaces a newer one; a reset run's writes are newer.
   */
  generation: number;
  seq: number;
}

/** The session in a record, without the row's bookkeeping. */
export function sessionOf(record: SessionRecord): Session {
  const { updatedAtMs: _updated, generation: _generation, seq: _seq, ...session } = record;
  return session;
}

/**
 * How often activity on a session need be told: the orchestrator signals the workflow at most this
 * often, and the workflow records it in the store as often, which is where the orchestrator looks.
 */
export function activityDebounceMs(timeouts: Pick<SessionTimeouts, 'idleTimeoutMs'>): number {
  return Math.min(5000, timeouts.idleTimeoutMs / 10);
}

/** How long a session lives, idles and is looked after: set by the operator (lib/config.ts), carried by the workflow. */
export interface SessionTimeouts {
  /** READY with no activity for this long → SUSPENDED. */
  idleTimeoutMs: number;
  /** SUSPENDED for this long → the session expires and everything but its volume goes. */
  retentionMs: number;
  /** Continue-as-new once the history has this many events. */
  maxHistoryEvents: number;
  /** How often a READY session checks that its agent still answers (and restarts it if not). */
  agentProbeIntervalMs: number;
}

/**
 * A (user, workspace) volume's life, owned by its volume workflow (workflows/volume.ts):
 * - PRESENT: kept; a session may hold it;
 * - TRASHED: unused for the retention period, to be removed at `removeAtMs` unless a session or an
 *   operator wants it back first (the soft-delete window); the data is untouched;
 * - REMOVING: being backed up (where configured) and deleted; a session that asks for it waits;
 * - REMOVED: gone; a later session of the workspace makes a new one.
 */
export const VOLUME_STATES = ['PRESENT', 'TRASHED', 'REMOVING', 'REMOVED'] as const;
export type VolumeState = (typeof VOLUME_STATES)[number];

export function isVolumeState(value: string): value is VolumeState {
  return (VOLUME_STATES as readonly string[]).includes(value);
}

/** How long an unused volume is kept: set by the operator (lib/config.ts). */
export interface VolumeTimeouts {
  /** Unused (no live session) for this long → TRASHED. */
  retentionMs: number;
  /** TRASHED for this long → removed. */
  softDeleteWindowMs: number;
}

/**
 * A volume as the store keeps it: a projection that only its volume workflow writes. Writes are
 * ordered by (generation, seq): a late or retried write never replaces a newer one.
 */
export interface VolumeRecord extends SessionPlacement {
  user: string;
  workspace: string;
  state: VolumeState;
  /** An operator exempted it from removal. */
  pinned: boolean;
  /** When its last session ended, or now while one runs. */
  lastUsedAtMs: number;
  /** When it will be trashed (PRESENT) or removed (TRASHED); null while in use or pinned. */
  removeAtMs: number | null;
  /** Bytes, as the backend counts them (ComputeBackend.volumeSize) when its last session released it; null if not measured. */
  sizeBytes: number | null;
  /** When this volume's owner started (a removed volume's successor starts later). */
  generation: number;
  /** Counts the owner's writes within a generation. */
  seq: number;
  /** When the row was last written (by the store's clock). */
  updatedAtMs: number;
}
