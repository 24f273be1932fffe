/**
 * The proxy's hold on its build session: the session from the orchestrator, a certificate for a
 * key that never leaves this process, and an mTLS client to the session's agent. The certificate
 * is renewed (with a fresh key) after two thirds of its life, so a proxy that builds for longer
 * than a certificate lives keeps working; calls under way finish on the connection they began on,
 * and the replaced client still takes new calls for a while.
 */
import { ROOT_CONTEXT, context } from '@opentelemetry/api';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import type { AgentClient } from '../../gen/proto/rbs/v1/Agent';
import { connect } from '../../lib/client-config';
import { loadConfig } from '../../lib/config';
import { WAITING_FOR } from '../../lib/domain';
import { type OrchestratorClient, OrchestratorUnreachableError, type ServedSession } from '../../lib/grpc/orchestrator-client';
import { clientKeepalive } from '../../lib/grpc/keepalive';
import { protos } from '../../lib/grpc/protos';
import { channelCredentials, tlsChannelOptions, type TlsMaterial } from '../../lib/grpc/tls';
import { keepRenewed } from '../../lib/pki/certificate';
import { newKeyPair } from '../../lib/pki/key-pair';
import { traceContextInterceptor } from '../../lib/tracing/grpc';

export interface SessionLink {
  session: ServedSession;
  orchestrator: OrchestratorClient;
  /** The agent client with the newest certificate: read it for each call. */
  readonly agent: AgentClient;
  close(): void;
}

/** A fresh key, certified for this session's proxy by the orchestrator. */
async function certify(orchestrator: OrchestratorClient, sessionId: string): Promise<TlsMaterial> {
  const { publicKeyPem, privateKeyPem } = newKeyPair();
  const issued = await orchestrator.issueProxyCertificate(sessionId, publicKeyPem);
  return { caCertPem: issued.caCertificatePem, certPem: issued.certificatePem, keyPem: privateKeyPem };
}

/**
 * HTTP/2's default 64 KiB receive window lets the agent send one window per round trip through
 * this event loop: outputs fetched at tens of MB/s. A wider one (still bounded: it is what may be
 * buffered) keeps the stream full.
 */
const FETCH_WINDOW = { 'grpc-node.flow_control_window': 8 * 1024 * 1024 };

/** How long a client replaced by a renewal still takes new calls. */
const RETIRED_CLIENT_GRACE_MS = 60_000;

function agentClient(session: ServedSession, tls: TlsMaterial, keepaliveMs: number): AgentClient {
  const credentials = channelCredentials(tls, (id) => id.kind === 'agent' && id.sessionId === session.sessionId);
  return new (protos().agent.rbs.v1.Agent)(session.agentAddress, credentials, {
    ...tlsChannelOptions(session.agentAddress),
    ...clientKeepalive(keepaliveMs),
    // Its own subchannels, gone with it: a connection attempt stuck on a dead path dies with the client.
    'grpc.use_local_subchannel_pool': 1,
    ...FETCH_WINDOW,
    interceptors: [traceContextInterceptor],
  }) as unknown as AgentClient;
}

/**
 * How long a proxy keeps asking an orchestrator that refuses connections: it may be restarting (a
 * crash, a rolling update), which takes seconds. One that does not answer at all fails at once.
 */
const ORCHESTRATOR_RESTART_GRACE_MS = 15_000;
const ORCHESTRATOR_RETRY_MS = 500;

/**
 * Refused, or lost mid-call (UNAVAILABLE): it may be restarting. GetServer may be asked again: it
 * attaches to the session the first attempt started.
 */
function orchestratorRestarting(err: unknown): boolean {
  return (err instanceof OrchestratorUnreachableError && err.refused) || (err as { code?: unknown }).code === grpc.status.UNAVAILABLE;
}

/** Tells the developer what their session is doing while GetServer waits for it (best effort); returns the stop. */
function showProgress(orchestrator: OrchestratorClient, workspace: string, tell: (message: string) => void): () => void {
  let shown: string | undefined;
  const watch = orchestrator.watch({ workspace }, ({ phase }) => {
    const doing = WAITING_FOR[phase];
    if (doing && doing !== shown) tell(`waiting for the session: ${doing}`);
    shown = doing ?? shown;
  });
  watch.done.catch(() => undefined); // GetServer's answer, not the progress, decides
  return () => watch.cancel();
}

/** GetServer, on a fresh connection per attempt (no reconnection back-off), through an orchestrator restart. */
async function getServer(workspace: string, options: OpenOptions): Promise<{ orchestrator: OrchestratorClient; session: ServedSession }> {
  const giveUpAt = Date.now() + ORCHESTRATOR_RESTART_GRACE_MS;
  for (let told = false; ;) {
    const orchestrator = await connect();
    const stopShowing = showProgress(orchestrator, workspace, options.tell);
    try {
      return { orchestrator, session: await orchestrator.getServer(workspace, { unreachableAgent: options.unreachableAgent }) };
    } catch (err) {
      orchestrator.close();
      if (!orchestratorRestarting(err) || Date.now() >= giveUpAt) throw err;
      const why = err instanceof OrchestratorUnreachableError ? err.message : `the orchestrator dropped GetServer (${(err as grpc.ServiceError).details})`;
      if (!told) options.tell(`${why}: trying again for ${ORCHESTRATOR_RESTART_GRACE_MS / 1000} s, in case it is restarting`);
      told = true;
      await sleep(ORCHESTRATOR_RETRY_MS);
    } finally {
      stopShowing();
    }
  }
}

export interface OpenOptions {
  /** The agent this proxy could not reach, for the session to check (GetServerRequest). */
  unreachableAgent?: string;
  /** What the developer should see while they wait. */
  tell(message: string): void;
}

export async function openSession(workspace: string, log: (message: string) => void, options: OpenOptions): Promise<SessionLink> {
  const { orchestrator, session } = await getServer(workspace, options);
  try {
    let tls = await certify(orchestrator, session.sessionId);
    const { keepaliveMs } = loadConfig();
    let agent = agentClient(session, tls, keepaliveMs);
    let closed = false;
    // The user may have logged in again since: each renewal asks with their newest certificate.
    const renew = async () => {
      const current = await connect();
      try {
        tls = await certify(current, session.sessionId);
      } finally {
        current.close();
      }
      if (!closed) {
        const old = agent;
        agent = agentClient(session, tls, keepaliveMs);
        // A closed client refuses new calls at once, and a command may be about to make one on the
        // client it read a moment ago (its output fetch, its sync's stream): close it a while later.
        setTimeout(() => old.close(), RETIRED_CLIENT_GRACE_MS).unref();
      }
      return tls.certPem;
    };
    // Renewals come hours later, for no command: bound to no trace, not to the command that opened the session.
    const stopRenewing = keepRenewed(tls.certPem, context.bind(ROOT_CONTEXT, renew), (err, retryMs) =>
      log(`renewing the proxy certificate failed, retrying in ${retryMs} ms: ${err.message}`),
    );
    return {
      session,
      orchestrator,
      get agent() {
        return agent;
      },
      close() {
        closed = true;
        stopRenewing();
        agent.close();
        orchestrator.close();
      },
    };
  } catch (err) {
    orchestrator.close();
    throw err;
  }
}
