/**
 * The agent as it runs in a pod (services/agent/main.ts without flags, RBS_AGENT_* settings as
 * lib/compute/kubernetes/objects.ts agentPod sets them): the compiled agent, real mTLS, and the
 * plaintext health port the kubelet's gRPC probe uses.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { defaultAgentCommand } from '../../lib/compute/local-backend';
import { protos } from '../../lib/grpc/protos';
import { channelCredentials, writeTlsMaterial } from '../../lib/grpc/tls';
import { freePort, waitForPort } from '../../lib/local/ports';
import { CertificateAuthority } from '../../lib/pki/ca';
import { LEASE_FILE, readLease } from '../../services/agent/volume-lease';

const SESSION = randomUUID();
let dir: string;
let agent: ChildProcess | undefined;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-agent-pod-'));
});

afterEach(() => {
  agent?.kill('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
});

function startAgent(env: Record<string, string>): { exited: Promise<number | null>; stderr: () => string } {
  const [node, main] = defaultAgentCommand();
  let stderr = '';
  agent = spawn(node, [main], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  agent.stderr!.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => agent!.once('exit', (code) => resolve(code)));
  return { exited, stderr: () => stderr };
}

/** The settings of an agent pod on `volume`, with credentials in `tlsDir`. */
const podEnv = (volume: string, tlsDir: string, generation: number) => ({
  RBS_AGENT_SESSION: SESSION,
  RBS_AGENT_TLS_DIR: tlsDir,
  RBS_AGENT_VOLUME_DIR: volume,
  RBS_AGENT_GENERATION: String(generation),
  HOME: path.join(volume, 'home'),
});

function unary<T>(invoke: (callback: grpc.requestCallback<T>) => void): Promise<T> {
  return new Promise((resolve, reject) => invoke((err, response) => (err ? reject(err) : resolve(response!))));
}

/** The session agent's credentials in `dir`/tls, from a new CA. */
async function agentCredentials(): Promise<{ ca: CertificateAuthority; tlsDir: string }> {
  const ca = await CertificateAuthority.loadOrCreate(path.join(dir, 'ca'));
  const tlsDir = path.join(dir, 'tls');
  await writeTlsMaterial(tlsDir, 'agent', {
    caCertPem: ca.certPem,
    ...(await ca.issue({ kind: 'agent', sessionId: SESSION }, { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] })),
  });
  return { ca, tlsDir };
}

test('serves mTLS on its port and plaintext health on the probe port, with the workspace and HOME on the volume', async () => {
  const { ca, tlsDir } = await agentCredentials();
  const volume = path.join(dir, 'volume');
  fs.mkdirSync(volume);
  const [port, healthPort] = [await freePort(), await freePort()];
  const { exited, stderr } = startAgent({
    ...podEnv(volume, tlsDir, 42),
    RBS_AGENT_LISTEN: `127.0.0.1:${port}`,
    RBS_AGENT_HEALTH_LISTEN: `127.0.0.1:${healthPort}`,
  });
  await waitForPort('127.0.0.1', healthPort, 10_000, () => (agent!.exitCode !== null ? stderr() : null));

  const { health, agent: agentService } = protos();
  const probe = new health.grpc.health.v1.Health(`127.0.0.1:${healthPort}`, grpc.credentials.createInsecure());
  expect(await unary((done) => probe.check({ service: '' }, done))).toEqual({ status: 'SERVING' });
  // The plaintext port is health only: the agent's own service is not there.
  const plainAgent = new agentService.rbs.v1.Agent(`127.0.0.1:${healthPort}`, grpc.credentials.createInsecure());
  await expect(unary((done) => plainAgent.ping({}, done))).rejects.toMatchObject({ code: grpc.status.UNIMPLEMENTED });

  const worker = { caCertPem: ca.certPem, ...(await ca.issue({ kind: 'service', name: 'worker' })) };
  const credentials = channelCredentials(worker, (id) => id.kind === 'agent' && id.sessionId === SESSION);
  const client = new agentService.rbs.v1.Agent(`127.0.0.1:${port}`, credentials);
  expect(await unary((done) => client.ping({}, done))).toMatchObject({ sessionId: SESSION, workspaceDir: path.join(volume, 'workspace') });
  expect(fs.readdirSync(volume).sort()).toEqual(['.rbs-watch', 'agent-lease.json', 'build-events', 'home', 'workspace']);
  const { claim } = (await readLease(path.join(volume, LEASE_FILE))) as { claim: string };
  expect(await readLease(path.join(volume, LEASE_FILE))).toMatchObject({ generation: 42, leaseMs: 30_000 });
  [probe, plainAgent, client].forEach((c) => c.close());

  agent!.kill('SIGTERM');
  expect(await exited).toBe(0);
  // Stopped gracefully: its successor need not wait it out.
  expect(fs.existsSync(path.join(volume, `${LEASE_FILE}.released.${claim}`))).toBe(true);
});

test('a replaced pod restarted somewhere (an older generation than the volume holder) exits 4 naming the holder, and leaves the volume alone', async () => {
  const volume = path.join(dir, 'volume');
  fs.mkdirSync(volume);
  const holder = { claim: '0123abcd', generation: 100, leaseMs: 30_000, startedAtMs: 0 };
  const lease = JSON.stringify({ ...holder, process: { host: 'node-b', bootId: 'b', pidNamespace: 'pid:[2]', pid: 7, startTime: '9' } });
  fs.writeFileSync(path.join(volume, LEASE_FILE), lease);
  fs.writeFileSync(path.join(volume, `${LEASE_FILE}.released.0123abcd`), ''); // released: no matter
  const { exited, stderr } = startAgent(podEnv(volume, (await agentCredentials()).tlsDir, 42));
  expect(await exited).toBe(4);
  expect(stderr()).toContain('the volume belongs to a newer agent generation 100 (pid 7 on node-b');
  // Only the (empty) directories it makes before it looks at the lease.
  expect(fs.readdirSync(volume).sort()).toEqual([LEASE_FILE, `${LEASE_FILE}.released.0123abcd`, 'home', 'workspace']);
  expect(fs.readdirSync(path.join(volume, 'workspace'))).toEqual([]);
  expect(fs.readFileSync(path.join(volume, LEASE_FILE), 'utf8')).toBe(lease);
});

test('refuses incomplete pod settings with the variable at fault', async () => {
  const { exited, stderr } = startAgent({ RBS_AGENT_SESSION: SESSION, RBS_AGENT_VOLUME_DIR: dir });
  expect(await exited).toBe(2);
  expect(stderr()).toMatch(/RBS_AGENT_TLS_DIR is required in a pod[\s\S]*usage: agent/);
  const badSession = startAgent({ RBS_AGENT_SESSION: 'not-a-session', RBS_AGENT_TLS_DIR: dir, RBS_AGENT_VOLUME_DIR: dir });
  expect(await badSession.exited).toBe(2);
  expect(badSession.stderr()).toMatch(/RBS_AGENT_SESSION: /);
  const badGeneration = startAgent({ ...podEnv(dir, dir, 1), RBS_AGENT_GENERATION: '1e3' });
  expect(await badGeneration.exited).toBe(2);
  expect(badGeneration.stderr()).toContain("RBS_AGENT_GENERATION must be a whole number from 0 to 9007199254740991, got '1e3'");
});
