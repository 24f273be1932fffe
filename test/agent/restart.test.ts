/**
 * An agent that dies without stopping its Bazel server (SIGKILL, an OOM kill, a node crash) leaves
 * that server on the volume's output base, unknown to the next agent: the next agent may not talk
 * to it (it did not start it), yet must serve the next build and leave one server, not two. The
 * compiled agent in pod mode, real mTLS, real rsync and the real Bazel client and server.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AgentClient } from '../../gen/proto/rbs/v1/Agent';
import type { RunResponse__Output } from '../../gen/proto/command_server/RunResponse';
import { defaultAgentCommand } from '../../lib/compute/local-backend';
import { protos } from '../../lib/grpc/protos';
import { tlsChannelOptions, type TlsMaterial, channelCredentials, writeTlsMaterial } from '../../lib/grpc/tls';
import { freePort, waitForPort } from '../../lib/local/ports';
import { CertificateAuthority } from '../../lib/pki/ca';
import { syncWorkspace } from '../../services/proxy/sync';
import { bazelServersOn } from '../data-path/fixture';
import { waitFor } from '../harness/wait';
import { write } from '../sync/fixture';

jest.setTimeout(120_000);

const SESSION = randomUUID();
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-agent-restart-'));
const volume = path.join(root, 'volume');
const source = path.join(root, 'source');
const outputBase = path.join(volume, 'output_base');
const agents: ChildProcess[] = [];
let proxyTls: TlsMaterial;
let agentTlsDir: string;

beforeAll(async () => {
  const [, agentMain] = defaultAgentCommand();
  if (!fs.existsSync(agentMain)) throw new Error(`${agentMain} is missing: run 'npx tsc -p tsconfig.json' first`);
  const ca = await CertificateAuthority.loadOrCreate(path.join(root, 'ca'));
  agentTlsDir = path.join(root, 'agent-tls');
  const agentCert = await ca.issue({ kind: 'agent', sessionId: SESSION }, { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  await writeTlsMaterial(agentTlsDir, 'agent', { caCertPem: ca.certPem, ...agentCert });
  proxyTls = { caCertPem: ca.certPem, ...(await ca.issue({ kind: 'proxy', sessionId: SESSION, user: 'alice' })) };
  fs.mkdirSync(volume);
  write(source, { WORKSPACE: '', 'in.txt': 'hello\n', BUILD: 'genrule(name = "gen", srcs = ["in.txt"], outs = ["gen.txt"], cmd = "cp $< $@")\n' });
});

afterAll(() => {
  agents.forEach((agent) => agent.kill('SIGKILL'));
  for (const pid of bazelServersOn(outputBase)) process.kill(pid, 'SIGKILL');
  fs.rmSync(root, { recursive: true, force: true });
});

/** The compiled agent as a pod runs it; resolves with its address once it listens. */
async function startAgent(): Promise<{ process: ChildProcess; address: string }> {
  const [node, main] = defaultAgentCommand();
  const port = await freePort();
  const env = {
    PATH: process.env.PATH,
    HOME: path.join(volume, 'home'),
    RBS_AGENT_SESSION: SESSION,
    RBS_AGENT_TLS_DIR: agentTlsDir,
    RBS_AGENT_VOLUME_DIR: volume,
    RBS_AGENT_LISTEN: `127.0.0.1:${port}`,
  };
  const agent = spawn(node, [main], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  agents.push(agent);
  let stderr = '';
  agent.stderr!.on('data', (chunk) => (stderr += chunk));
  await waitForPort('127.0.0.1', port, 10_000, () => (agent.exitCode !== null ? stderr : null));
  return { process: agent, address: `127.0.0.1:${port}` };
}

/** As the session's proxy: syncs `source`, then builds //:gen; resolves with Bazel's exit code. */
async function build(address: string): Promise<number> {
  const isAgent = (id: { kind: string; sessionId?: string }) => id.kind === 'agent' && id.sessionId === SESSION;
  const client = new (protos().agent.rbs.v1.Agent)(address, channelCredentials(proxyTls, isAgent), tlsChannelOptions('127.0.0.1')) as unknown as AgentClient;
  try {
    const { syncId } = await syncWorkspace({ workspace: source, agent: client, sessionId: SESSION });
    const call = client.run({
      request: {
        arg: ['build', '--nosandbox_debug', `--client_cwd=${source}`, '//:gen'].map((a) => Buffer.from(a)),
        blockForLock: true,
        clientDescription: 'pid=4242',
        startupOptions: [],
      },
      clientWorkspace: source,
      syncId,
    });
    return await new Promise<number>((resolve, reject) => {
      let exitCode = -1;
      call.on('data', (r: RunResponse__Output) => r.finished && (exitCode = r.exitCode));
      call.on('end', () => resolve(exitCode));
      call.on('error', reject);
    });
  } finally {
    client.close();
  }
}

test('an agent restarted on the same volume, its predecessor SIGKILLed with its Bazel server running, stops that server at once, starts its own ahead of the next build and serves that build on it; one server remains', async () => {
  const first = await startAgent();
  // A new volume's copy is not a workspace yet: no server is started before a command asks.
  await new Promise((resolve) => setTimeout(resolve, 3_000));
  expect(bazelServersOn(outputBase)).toEqual([]);
  expect(await build(first.address)).toBe(0);
  const [orphan] = bazelServersOn(outputBase);
  expect(orphan).toBeDefined();
  first.process.kill('SIGKILL');
  await new Promise((resolve) => first.process.once('exit', resolve));
  expect(bazelServersOn(outputBase)).toEqual([orphan]); // the server outlived its agent

  const second = await startAgent();
  expect(bazelServersOn(outputBase)).not.toContain(orphan); // stopped before the new agent answers anyone
  // The copy is a workspace: its JVM starts now, while the proxy would sync, not after.
  await waitFor(() => bazelServersOn(outputBase).length > 0, 30_000, 'the new agent to start its Bazel server ahead of a command');
  const warmed = bazelServersOn(outputBase);
  expect(warmed).toHaveLength(1);
  fs.writeFileSync(path.join(source, 'in.txt'), 'edited\n');
  expect(await build(second.address)).toBe(0);
  expect(fs.readFileSync(path.join(volume, 'workspace', 'bazel-bin', 'gen.txt'), 'utf8')).toBe('edited\n');
  expect(bazelServersOn(outputBase)).toEqual(warmed); // the build ran on it

  second.process.kill('SIGTERM'); // a clean stop takes its server along
  await new Promise((resolve) => second.process.once('exit', resolve));
  expect(bazelServersOn(outputBase)).toEqual([]);
});
