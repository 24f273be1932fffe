/**
 * The proxy's hold on its build session: the session from the orchestrator, a certificate for a
 * key that never leaves this process, and an mTLS client to the session's agent.
 */
import { generateKeyPairSync } from 'node:crypto';
import type { AgentClient } from '../../gen/proto/rbs/v1/Agent';
import { connect } from '../../lib/client-config';
import type { OrchestratorClient, Session } from '../../lib/grpc/orchestrator-client';
import { clientKeepalive } from '../../lib/grpc/keepalive';
import { protos } from '../../lib/grpc/protos';
import { TLS_CHANNEL_OPTIONS, channelCredentials, type TlsMaterial } from '../../lib/grpc/tls';

export interface SessionLink {
  session: Session;
  orchestrator: OrchestratorClient;
  agent: AgentClient;
  /** The proxy's credentials for the agent hop (rsync's transport uses them too). */
  tls: TlsMaterial;
  close(): void;
}

export async function openSession(workspace: string): Promise<SessionLink> {
  const orchestrator = await connect();
  try {
    const session = await orchestrator.getServer(workspace);
    const keys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const publicKeyPem = keys.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const issued = await orchestrator.issueProxyCertificate(session.sessionId, publicKeyPem);
    const tls: TlsMaterial = {
      caCertPem: issued.caCertificatePem,
      certPem: issued.certificatePem,
      keyPem: keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    };
    const credentials = channelCredentials(tls, (id) => id.kind === 'agent' && id.sessionId === session.sessionId);
    const agent = new (protos().agent.rbs.v1.Agent)(session.agentAddress, credentials, {
      ...TLS_CHANNEL_OPTIONS,
      ...clientKeepalive(),
    }) as unknown as AgentClient;
    return {
      session,
      orchestrator,
      agent,
      tls,
      close() {
        agent.close();
        orchestrator.close();
      },
    };
  } catch (err) {
    orchestrator.close();
    throw err;
  }
}
