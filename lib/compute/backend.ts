/**
 * The seam between the session workflow's activities and whatever runs sessions: local processes
 * on the embedded default, Kubernetes in production. Every method is idempotent, so an activity
 * that calls it can be retried after a crash at any point.
 */

export interface NamespaceSpec {
  namespace: string;
  sessionId: string;
  user: string;
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

/** A namespace this backend created, as found when listing. */
export interface ManagedNamespace {
  namespace: string;
  sessionId: string;
  createdAt: Date;
}

/** A running agent, as found when listing (an agent may outlive its namespace after a crash). */
export interface RunningAgent {
  namespace: string;
  sessionId: string;
  startedAt: Date;
  /** Backend-specific handle: a pid locally, a pod name on Kubernetes. */
  id: string;
}

export interface ComputeBackend {
  readonly kind: 'local' | 'kubernetes';
  ensureNamespace(spec: NamespaceSpec): Promise<void>;
  /** Makes the (user, workspace) volume exist and available to the namespace; keeps its data. */
  ensureVolume(namespace: string, volume: string): Promise<void>;
  hasAgentCredentials(namespace: string): Promise<boolean>;
  installAgentCredentials(namespace: string, credentials: AgentCredentials): Promise<void>;
  /** Starts the agent unless it already runs. */
  startAgent(spec: AgentSpec): Promise<void>;
  /** Where the agent listens once it has started, or null while it has not. */
  agentAddress(namespace: string): Promise<string | null>;
  /** Copies the developer's workspace into the volume (the initial sync). */
  syncWorkspace(volume: string, sourceDir: string): Promise<void>;
  /** Stops the agent, keeping the namespace and the volume (suspend). */
  stopAgent(namespace: string): Promise<void>;
  /** Removes the namespace and all it holds, and waits until it is gone. */
  deleteNamespace(namespace: string): Promise<void>;
  /** Removes the volume and its data for good. */
  deleteVolume(volume: string): Promise<void>;
  listNamespaces(): Promise<ManagedNamespace[]>;
  listAgents(): Promise<RunningAgent[]>;
  /** Stops one agent found by listAgents. */
  killAgent(agent: RunningAgent): Promise<void>;
}
