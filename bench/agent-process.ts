/**
 * A session agent as deployed for the sync figures: the compiled agent in its own process (pod mode,
 * RBS_AGENT_* settings), reached over real mTLS by this process standing in for the proxy, so the two
 * ends of a sync do not share one event loop as they would in an in-process fixture.
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AgentClient } from '../gen/proto/rbs/v1/Agent';
import { defaultAgentCommand } from '../lib/compute/local-backend';
import { clientKeepalive } from '../lib/grpc/keepalive';
import { protos } from '../lib/grpc/protos';
import { tlsChannelOptions, channelCredentials, writeTlsMaterial } from '../lib/grpc/tls';
import { startChild } from '../lib/local/child';
import { freePort, waitForPort } from '../lib/local/ports';
import { CertificateAuthority } from '../lib/pki/ca';
import { syncWorkspace } from '../services/proxy/sync';

export interface AgentProcess {
  /** The developer's side: the tree to sync from. */
  source: string;
  /** The agent's copy on its volume. */
  workspace: string;
  /** Bazel's output base on the volume, which the agent's Fetch serves. */
  outputBase: string;
  /** This process's mTLS client of the agent, as the session's proxy. */
  client: AgentClient;
  sync(changed?: string[]): Promise<{ syncId: string; ms: number }>;
  stop(): Promise<void>;
}

/** `source`: the tree to sync from, `<root>/source` (made empty) by default. */
export async function startAgentProcess(root: string, source = path.join(root, 'source')): Promise<AgentProcess> {
  const sessionId = randomUUID();
  const ca = await CertificateAuthority.loadOrCreate(path.join(root, 'ca'));
  const tlsDir = path.join(root, 'agent-tls');
  const agentCertificate = await ca.issue({ kind: 'agent', sessionId }, { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  await writeTlsMaterial(tlsDir, 'agent', { caCertPem: ca.certPem, ...agentCertificate });
  const volume = path.join(root, 'volume');
  for (const dir of [source, volume]) fs.mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const [node, main] = defaultAgentCommand();
  const env = {
    PATH: process.env.PATH,
    HOME: path.join(volume, 'home'),
    RBS_AGENT_SESSION: sessionId,
    RBS_AGENT_TLS_DIR: tlsDir,
    RBS_AGENT_VOLUME_DIR: volume,
    RBS_AGENT_LISTEN: `127.0.0.1:${port}`,
  };
  const agent = startChild('agent', node, [main], { logFile: path.join(root, 'agent.log'), env });
  await waitForPort('127.0.0.1', port, 10_000);
  const proxyTls = { caCertPem: ca.certPem, ...(await ca.issue({ kind: 'proxy', sessionId, user: 'bench' })) };
  const isAgent = (id: { kind: string; sessionId?: string }) => id.kind === 'agent' && id.sessionId === sessionId;
  const options = { ...tlsChannelOptions('127.0.0.1'), ...clientKeepalive() };
  const client = new (protos().agent.rbs.v1.Agent)(`127.0.0.1:${port}`, channelCredentials(proxyTls, isAgent), options) as unknown as AgentClient;
  let lastSyncId: string | undefined;
  return {
    source,
    workspace: path.join(volume, 'workspace'),
    outputBase: path.join(volume, 'output_base'),
    client,
    async sync(changed) {
      // An incremental sync builds on the last one, as the proxy's do.
      const done = await syncWorkspace({ workspace: source, agent: client, sessionId, changed, baseSyncId: changed && lastSyncId });
      lastSyncId = done.syncId;
      return done;
    },
    async stop() {
      client.close();
      await agent.stop();
    },
  };
}
