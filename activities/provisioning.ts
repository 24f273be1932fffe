/** The provisioning and teardown steps of a session, each idempotent and safe to retry. */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { heartbeating } from './heartbeating';
import { type AgentProblem, AgentStartError, type ComputeBackend, type InitialSync, NamespaceGoneError, type Removal } from '../lib/compute/backend';
import { agentCertificateExpiry, certificateExpiry } from '../lib/pki/certificate';
import { issueCertificate, type CertificateSigner } from '../lib/pki/signer';
import { FAILURE } from '../workflows/messages';
import { VolumeNotFoundError, WorkspaceStorageError } from '../lib/filestore/errors';

const PROBE_ATTEMPTS = 3;
const PROBE_RETRY_MS = 1000;

export interface SessionRef {
  namespace: string;
  volume: string;
  sessionId: string;
  user: string;
}

export interface ProvisioningDeps {
  backend: ComputeBackend;
  /** Signs agent certificates; the worker holds no CA key of its own when a signer service runs. */
  signer: CertificateSigner;
  agentCertificateValidityMs: number;
  /** How long an agent may take to start serving before the session fails. */
  agentReadyTimeoutMs: number;
}

/** A failure the backend knows to be permanent ends the saga at once, with its reason. */
function permanent(err: unknown): unknown {
  if (err instanceof NamespaceGoneError) return ApplicationFailure.create({ type: FAILURE.NAMESPACE_GONE, message: err.message, nonRetryable: true });
  if (!(err instanceof AgentStartError)) return err;
  return ApplicationFailure.create({ type: FAILURE.AGENT_START_FAILED, message: err.message, nonRetryable: true, details: [err.reason] });
}

export function createProvisioningActivities({ backend, signer, agentCertificateValidityMs, agentReadyTimeoutMs }: ProvisioningDeps) {
  return {
    /** Not permanent() when the namespace goes from under it: a retry makes it again. */
    async createNamespace({ namespace, sessionId, user, volume }: SessionRef): Promise<void> {
      await backend.ensureNamespace({ namespace, sessionId, user, volume });
    },

    /** Says who fills the volume before READY: the workflow leaves out its sync step when the proxy does. */
    async bindVolume({ namespace, sessionId, volume }: SessionRef): Promise<{ initialSync: InitialSync }> {
      await backend.ensureVolume({ namespace, sessionId, volume }).catch((err) => {
        throw permanent(err);
      });
      return { initialSync: backend.initialSync };
    },

    /**
     * Keys go straight from here to the backend: they never enter workflow history. Credentials
     * with less than a third of their life left are replaced (a running agent re-reads them).
     * Returns when they should next be looked at: once that third begins.
     */
    async issueAgentCredentials({ namespace, sessionId, volume }: SessionRef): Promise<number> {
      const renewFrom = (expiresAt: Date) => expiresAt.getTime() - agentCertificateValidityMs / 3;
      const installed = await backend.agentCertificate(namespace);
      const expiresAt = installed ? agentCertificateExpiry(installed, sessionId) : null;
      if (expiresAt && renewFrom(expiresAt) > Date.now()) return renewFrom(expiresAt);
      const issued = await issueCertificate(
        signer,
        { kind: 'agent', sessionId },
        { ...backend.agentTlsNames(namespace), validityMs: agentCertificateValidityMs },
      );
      await backend.installAgentCredentials({ namespace, sessionId, volume }, { caCertPem: signer.caCertPem, ...issued }).catch((err) => {
        throw permanent(err);
      });
      return renewFrom(certificateExpiry(issued.certPem));
    },

    async startAgent({ namespace, sessionId, volume }: SessionRef): Promise<void> {
      await backend.startAgent({ namespace, sessionId, volume }).catch((err) => {
        throw permanent(err);
      });
    },

    /** Returns the agent's address once it serves; its progress goes to the heartbeats. */
    async waitForAgent({ namespace, sessionId, volume }: SessionRef): Promise<string> {
      const { cancellationSignal: signal } = Context.current();
      return heartbeating((onProgress) =>
        backend.waitForAgent({ namespace, sessionId, volume }, { deadlineMs: agentReadyTimeoutMs, onProgress, signal }),
      ).catch((err) => {
        throw permanent(err);
      });
    },

    /**
     * Whether the session's agent still answers: null if it does, else what is wrong. Restarting
     * an agent kills the builds it runs, so one slow answer is not enough: it must fail thrice.
     * An agent that is gone is not asked again: it is certain, and the developer waits for its successor.
     */
    async probeAgent({ namespace, sessionId }: SessionRef): Promise<string | null> {
      let problem: AgentProblem | null = null;
      for (let attempt = 1; attempt <= PROBE_ATTEMPTS; attempt++) {
        problem = await backend.agentProblem(namespace, sessionId);
        if (problem === null) return null;
        if (problem.gone) break;
        if (attempt < PROBE_ATTEMPTS) await Context.current().sleep(PROBE_RETRY_MS);
      }
      return problem!.detail;
    },

    async syncWorkspace({ volume, workspace }: { volume: string; workspace: string }): Promise<void> {
      try {
        await heartbeating(() => backend.syncWorkspace(volume, workspace));
      } catch (err) {
        if (err instanceof Error && err.name === FAILURE.WORKSPACE_NOT_FOUND) {
          throw ApplicationFailure.nonRetryable(err.message, FAILURE.WORKSPACE_NOT_FOUND);
        }
        throw err;
      }
    },

    async stopAgent({ namespace }: Pick<SessionRef, 'namespace'>): Promise<void> {
      await backend.stopAgent(namespace);
    },

    /**
     * Only while it is still the session's (ComputeBackend.deleteNamespace): a session's own, or the one the
     * cleanup found it a leftover of (`orphanOf`). A cleanup pass recorded before `orphanOf` gives neither.
     */
    async deleteNamespace({ namespace, sessionId, orphanOf }: Pick<SessionRef, 'namespace'> & { sessionId?: string; orphanOf?: string }): Promise<Removal> {
      return backend.deleteNamespace(namespace, orphanOf ?? sessionId);
    },

    /** What the volume costs, in bytes (ComputeBackend.volumeSize). */
    async measureVolume({ volume }: Pick<SessionRef, 'volume'>): Promise<number | null> {
      return heartbeating(() => backend.volumeSize(volume));
    },

    /**
     * With Filestore wired, the share is backed up first, which can take minutes. A volume whose
     * backup fails for good (a tier without backups, a backup in ERROR) is not deleted, and that is final.
     */
    async deleteVolume({ volume }: Pick<SessionRef, 'volume'>): Promise<void> {
      try {
        await heartbeating(() => backend.deleteVolume(volume));
      } catch (err) {
        // A storage error that retrying cannot fix (no backups on the tier, a failed backup, a refusal): kept, and said.
        if (err instanceof WorkspaceStorageError && !err.retryable && !(err instanceof VolumeNotFoundError)) {
          throw ApplicationFailure.nonRetryable(err.message, FAILURE.VOLUME_NOT_REMOVABLE);
        }
        throw err;
      }
    },
  };
}
