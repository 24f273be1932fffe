/** The provisioning and teardown steps of a session, each idempotent and safe to retry. */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { ComputeBackend } from '../lib/compute/backend';
import { InvalidPublicKeyError, type CertificateAuthority } from '../lib/pki/ca';
import type { TlsMaterial } from '../lib/grpc/tls';
import { FAILURE } from '../workflows/messages';
import { agentIsServing } from './agent-health';

/** A proxy renews its certificate when it starts; a working day covers any one proxy's life. */
const PROXY_CERTIFICATE_VALIDITY_MS = 12 * 60 * 60 * 1000;

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
  ca: CertificateAuthority;
  /** The worker's control-plane identity, for talking to agents. */
  workerTls: TlsMaterial;
  /** How long an agent may take to start serving before the session fails. */
  agentReadyTimeoutMs: number;
}

export function createProvisioningActivities({ backend, ca, workerTls, agentReadyTimeoutMs }: ProvisioningDeps) {
  return {
    async createNamespace({ namespace, sessionId, user }: SessionRef): Promise<void> {
      await backend.ensureNamespace({ namespace, sessionId, user });
    },

    async bindVolume({ namespace, volume }: SessionRef): Promise<void> {
      await backend.ensureVolume(namespace, volume);
    },

    /** Keys go straight from here to the backend: they never enter workflow history. */
    async issueAgentCredentials({ namespace, sessionId }: SessionRef): Promise<void> {
      if (await backend.hasAgentCredentials(namespace)) return;
      const issued = await ca.issue({ kind: 'agent', sessionId }, { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
      await backend.installAgentCredentials(namespace, { caCertPem: ca.certPem, ...issued });
    },

    /** The session's proxy certificate, for a key the proxy holds. */
    async issueProxyCertificate({ sessionId, user, publicKeyPem }: { sessionId: string; user: string; publicKeyPem: string }): Promise<string> {
      try {
        return await ca.certifyPublicKey({ kind: 'proxy', sessionId, user }, publicKeyPem, { validityMs: PROXY_CERTIFICATE_VALIDITY_MS });
      } catch (err) {
        if (err instanceof InvalidPublicKeyError) throw ApplicationFailure.nonRetryable(err.message, FAILURE.INVALID_PUBLIC_KEY);
        throw err;
      }
    },

    async startAgent({ namespace, sessionId, volume }: SessionRef): Promise<void> {
      await backend.startAgent({ namespace, sessionId, volume });
    },

    /** Returns the agent's address once it answers a health check over mTLS as its session's agent. */
    async waitForAgent({ namespace, sessionId }: SessionRef): Promise<string> {
      const ctx = Context.current();
      const deadline = Date.now() + agentReadyTimeoutMs;
      let lastProblem = 'it has not published an address';
      while (Date.now() < deadline) {
        const address = await backend.agentAddress(namespace);
        if (address) {
          const problem = await agentIsServing(address, sessionId, workerTls);
          if (problem === null) return address;
          lastProblem = problem;
        }
        ctx.heartbeat(lastProblem);
        await ctx.sleep(50);
      }
      throw ApplicationFailure.nonRetryable(
        `agent of session ${sessionId} in ${namespace} not ready after ${agentReadyTimeoutMs} ms: ${lastProblem}`,
        'AgentNotReady',
      );
    },

    /**
     * Whether the session's agent still answers: null if it does, else what is wrong. Restarting
     * an agent kills the builds it runs, so one slow answer is not enough: it must fail thrice.
     */
    async probeAgent({ namespace, sessionId }: SessionRef): Promise<string | null> {
      let problem: string | null = null;
      for (let attempt = 1; attempt <= PROBE_ATTEMPTS; attempt++) {
        const address = await backend.agentAddress(namespace);
        problem = address ? await agentIsServing(address, sessionId, workerTls) : `agent of session ${sessionId} is not running`;
        if (problem === null) return null;
        if (attempt < PROBE_ATTEMPTS) await Context.current().sleep(PROBE_RETRY_MS);
      }
      return problem;
    },

    async syncWorkspace({ volume, workspace }: { volume: string; workspace: string }): Promise<void> {
      const ctx = Context.current();
      const beat = setInterval(() => ctx.heartbeat(), 1000);
      try {
        await backend.syncWorkspace(volume, workspace);
      } catch (err) {
        if (err instanceof Error && err.name === FAILURE.WORKSPACE_NOT_FOUND) {
          throw ApplicationFailure.nonRetryable(err.message, FAILURE.WORKSPACE_NOT_FOUND);
        }
        throw err;
      } finally {
        clearInterval(beat);
      }
    },

    async stopAgent({ namespace }: Pick<SessionRef, 'namespace'>): Promise<void> {
      await backend.stopAgent(namespace);
    },

    async deleteNamespace({ namespace }: Pick<SessionRef, 'namespace'>): Promise<void> {
      await backend.deleteNamespace(namespace);
    },

    async deleteVolume({ volume }: Pick<SessionRef, 'volume'>): Promise<void> {
      await backend.deleteVolume(volume);
    },
  };
}
