/**
 * The seam between the session workflow's activities and whatever runs sessions: local processes
 * on the embedded default, Kubernetes in production. Every method is idempotent, so an activity
 * that calls it can be retried after a crash at any point.
 */
import type { AgentLease } from '../agent-lease';

export interface NamespaceSpec {
  namespace: string;
  sessionId: string;
  user: string;
  /** The (user, workspace) volume the session will use: recorded with the namespace. */
  volume: string;
}

export interface AgentSpec {
  namespace: string;
  sessionId: string;
  volume: string;
}

/** The agent's TLS material. Secret: it goes from the issuing activity straight to the backend. */
export interface AgentCredentials {
  caCertPem: string;
  certPem: string;
  keyPem: string;
}

/** The names the agent's certificate must carry so that clients reach it by TLS host name (and SNI). */
export interface AgentTlsNames {
  dnsNames: string[];
  ipAddresses: string[];
}

/** A namespace this backend created, as found when listing. */
export interface ManagedNamespace {
  namespace: string;
  sessionId: string;
  createdAt: Date;
}

/**
 * What a removal of something found earlier did: removed it (or found it gone), or spared it, since it had
 * become another session's (a new session of the same workspace made it again under the same name).
 */
export type Removal = 'removed' | 'spared';

/** A running agent, as found when listing (an agent may outlive its namespace after a crash). */
export interface RunningAgent {
  namespace: string;
  sessionId: string;
  startedAt: Date;
  /** Backend-specific handle: a pid locally, a pod name on Kubernetes. */
  id: string;
}

/** How far a starting agent has come; reported while waiting for it. */
export interface AgentProgress {
  stage: 'waiting' | 'scheduled' | 'image pulled' | 'ready';
  detail: string;
}

/** What is wrong with a session's agent. */
export interface AgentProblem {
  detail: string;
  /**
   * Certain, not a slow answer: the agent's process or pod is gone, ended, or not the session's.
   * The session replaces such an agent at once; one that merely does not answer is asked again first.
   */
  gone: boolean;
}

export interface AgentWait {
  /** How long the agent may take to become ready before waitForAgent gives up (AgentStartError 'Timeout'). */
  deadlineMs: number;
  onProgress(progress: AgentProgress): void;
  /** Aborts the wait (the activity was cancelled). */
  signal?: AbortSignal;
}

/** Why an agent cannot start, for good: retrying the same step would fail the same way. */
export const AGENT_START_FAILURES = [
  'ImagePullBackOff',
  'CrashLoopBackOff',
  'ContainerConfigError',
  'QuotaExceeded',
  'PodRejected',
  'PodFailed',
  'Unschedulable',
  'RouteRejected',
  'Timeout',
] as const;
export type AgentStartFailure = (typeof AGENT_START_FAILURES)[number];

/** The session's namespace is not there, where an earlier step made it: someone removed it. Activities do not retry it. */
export class NamespaceGoneError extends Error {
  override name = 'NamespaceGoneError';
}

/** A permanent failure to start or reach an agent; activities turn it into a non-retryable failure. */
export class AgentStartError extends Error {
  constructor(
    readonly reason: AgentStartFailure,
    readonly detail: string,
  ) {
    super(`${reason}: ${detail}`);
    this.name = 'AgentStartError';
  }
}

export type InitialSync = 'worker' | 'proxy';

export interface ComputeBackend {
  readonly kind: 'local' | 'kubernetes';
  /**
   * Who fills a session's volume with the workspace before READY: the worker (syncWorkspace), or the
   * proxy, whose first rsync is a full one, when the worker cannot read the developer's machine.
   */
  readonly initialSync: InitialSync;
  /** The volume lease of its agents: a replacement agent waits its predecessor out before it serves. */
  readonly agentLease: AgentLease;
  ensureNamespace(spec: NamespaceSpec): Promise<void>;
  /** Makes the (user, workspace) volume exist and available to the session's namespace; keeps its data. */
  ensureVolume(spec: AgentSpec): Promise<void>;
  /** The agent certificate installed in `namespace` (PEM); null when there is none. */
  agentCertificate(namespace: string): Promise<string | null>;
  /** DNS names and IPs for the agent certificate of `namespace`. */
  agentTlsNames(namespace: string): AgentTlsNames;
  installAgentCredentials(spec: AgentSpec, credentials: AgentCredentials): Promise<void>;
  /** Starts the agent unless it already runs. Throws AgentStartError when it cannot, for good. */
  startAgent(spec: AgentSpec): Promise<void>;
  /**
   * Resolves to the address the proxy reaches the agent by once the agent serves; throws
   * AgentStartError when it fails for good or is not ready by the deadline.
   */
  waitForAgent(spec: AgentSpec, wait: AgentWait): Promise<string>;
  /** Null while the session's agent serves, else what is wrong with it (one look, no retries). */
  agentProblem(namespace: string, sessionId: string): Promise<AgentProblem | null>;
  /**
   * The initial sync of the developer's workspace into the volume. Local: the worker runs where the
   * workspace is and copies it (throws an error named WorkspaceNotFound if it is missing).
   * Kubernetes (initialSync 'proxy'): only sessions begun before that was known run it; it checks
   * that the volume is bound.
   */
  syncWorkspace(volume: string, sourceDir: string): Promise<void>;
  /** Stops the agent, keeping the namespace and the volume (suspend). */
  stopAgent(namespace: string): Promise<void>;
  /**
   * Removes the namespace and all it holds, and waits until it is gone. With `ofSession`, only while it
   * is still that session's: a new session of the same workspace may have made it again since it was found.
   */
  deleteNamespace(namespace: string, ofSession?: string): Promise<Removal>;
  /** Removes the volume and its data for good. */
  deleteVolume(volume: string): Promise<void>;
  /**
   * The volume's size in bytes, null if it does not exist: what it costs. Local: the disk its files
   * take. Kubernetes: its PV's capacity, which is what a Filestore share is charged for.
   */
  volumeSize(volume: string): Promise<number | null>;
  listNamespaces(): Promise<ManagedNamespace[]>;
  listAgents(): Promise<RunningAgent[]>;
  /** Stops one agent found by listAgents, not one of another session started since under its name. */
  killAgent(agent: RunningAgent): Promise<Removal>;
}
