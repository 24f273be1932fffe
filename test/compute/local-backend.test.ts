/**
 * LocalBackend against real agent processes (the compiled dist/services/agent/main.js), real rsync
 * and real mTLS. Every test gets its own home, so parallel runs never see each other's agents.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { AgentProgress } from '../../lib/compute/backend';
import { LocalBackend, defaultAgentCommand } from '../../lib/compute/local-backend';
import { agentCertificateExpiry } from '../../lib/pki/certificate';
import { protos } from '../../lib/grpc/protos';
import { type TlsMaterial, channelCredentials, tlsChannelOptions } from '../../lib/grpc/tls';
import { CertificateAuthority } from '../../lib/pki/ca';
import type { Identity } from '../../lib/pki/identity';
import { waitFor } from '../harness/wait';

const SESSION = randomUUID();
const OTHER_SESSION = randomUUID();
const NAMESPACE = 'alice-rbs-0a1b2c';
const VOLUME = 'alice-ws-0a1b2c';

let home: string;
let backend: LocalBackend;
let ca: CertificateAuthority;
const opened: grpc.Client[] = [];

beforeAll(() => {
  const [, agentMain] = defaultAgentCommand();
  if (!fs.existsSync(agentMain)) throw new Error(`${agentMain} is missing: run 'npx tsc -p tsconfig.json' first`);
});

beforeEach(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-local-backend-'));
  ca = await CertificateAuthority.loadOrCreate(path.join(home, 'ca'));
  backend = new LocalBackend({ home, agentCommand: defaultAgentCommand(), workerTls: await tlsFor({ kind: 'service', name: 'worker' }) });
});

afterEach(async () => {
  opened.splice(0).forEach((client) => client.close());
  for (const agent of await backend.listAgents()) await backend.killAgent(agent);
  fs.rmSync(home, { recursive: true, force: true });
});

async function tlsFor(identity: Identity): Promise<TlsMaterial> {
  const issued = await ca.issue(identity, { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  return { caCertPem: ca.certPem, ...issued };
}

async function provision(): Promise<void> {
  await backend.ensureNamespace({ namespace: NAMESPACE, sessionId: SESSION, user: 'alice', volume: VOLUME });
  const spec = { namespace: NAMESPACE, sessionId: SESSION, volume: VOLUME };
  await backend.ensureVolume(spec);
  await backend.installAgentCredentials(spec, await tlsFor({ kind: 'agent', sessionId: SESSION }));
}

/** Health and Agent clients of the agent at `address`, as `identity`, trusting only this session's agent. */
async function connect(address: string, identity: Identity) {
  const credentials = channelCredentials(await tlsFor(identity), (server) => server.kind === 'agent' && server.sessionId === SESSION);
  const { health, agent } = protos();
  const clients = {
    health: new health.grpc.health.v1.Health(address, credentials, tlsChannelOptions(address)),
    agent: new agent.rbs.v1.Agent(address, credentials, tlsChannelOptions(address)),
  };
  opened.push(clients.health, clients.agent);
  return clients;
}

function unary<T>(invoke: (callback: grpc.requestCallback<T>) => void): Promise<T> {
  return new Promise((resolve, reject) => invoke((err, response) => (err ? reject(err) : resolve(response!))));
}

/** Running, and not a zombie (a zombie's cmdline is empty). */
function alive(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8') !== '';
  } catch {
    return false;
  }
}

test('provisions a session, serves it over mTLS, syncs its workspace and tears it down', async () => {
  await provision();
  await backend.ensureNamespace({ namespace: NAMESPACE, sessionId: SESSION, user: 'alice', volume: VOLUME });
  expect(await backend.listNamespaces()).toEqual([{ namespace: NAMESPACE, sessionId: SESSION, createdAt: expect.any(Date) }]);
  expect(agentCertificateExpiry((await backend.agentCertificate(NAMESPACE))!, SESSION)!.getTime()).toBeGreaterThan(Date.now());
  expect(await backend.agentAddress(NAMESPACE)).toBeNull();

  const spec = { namespace: NAMESPACE, sessionId: SESSION, volume: VOLUME };
  await Promise.all([backend.startAgent(spec), backend.startAgent(spec)]);
  const agents = await backend.listAgents();
  expect(agents).toEqual([{ namespace: NAMESPACE, sessionId: SESSION, startedAt: expect.any(Date), id: expect.any(String) }]);
  const nsDir = path.join(home, 'namespaces', NAMESPACE);
  expect(fs.readFileSync(path.join(nsDir, 'agent.log'), 'utf8')).toMatch(/already serves/);
  await backend.startAgent(spec);
  expect(await backend.listAgents()).toEqual(agents);

  const address = await backend.agentAddress(NAMESPACE);
  expect(address).toMatch(/^127\.0\.0\.1:\d+$/);
  const worker = await connect(address!, { kind: 'service', name: 'worker' });
  expect(await unary((done) => worker.health.check({}, done))).toEqual({ status: 'SERVING' });
  expect(await unary((done) => worker.agent.ping({}, done))).toEqual({
    sessionId: SESSION,
    workspaceDir: path.join(home, 'volumes', VOLUME, 'workspace'),
    startedAtMs: expect.any(Number),
  });
  const ownProxy = await connect(address!, { kind: 'proxy', sessionId: SESSION, user: 'alice' });
  expect(await unary((done) => ownProxy.agent.ping({}, done))).toMatchObject({ sessionId: SESSION });
  const otherProxy = await connect(address!, { kind: 'proxy', sessionId: OTHER_SESSION, user: 'bob' });
  const denied = { code: grpc.status.PERMISSION_DENIED, details: expect.stringContaining(SESSION) };
  await expect(unary((done) => otherProxy.health.check({}, done))).rejects.toMatchObject(denied);
  await expect(unary((done) => otherProxy.agent.ping({}, done))).rejects.toMatchObject(denied);

  await backend.stopAgent(NAMESPACE);
  await backend.stopAgent(NAMESPACE);
  expect(await backend.listAgents()).toEqual([]);
  expect(await backend.agentAddress(NAMESPACE)).toBeNull();
  expect(fs.readdirSync(nsDir).sort()).toEqual(['agent.log', 'namespace.json', 'tls']);

  await backend.deleteNamespace(NAMESPACE);
  await backend.deleteNamespace(NAMESPACE);
  await backend.deleteVolume(VOLUME);
  await backend.deleteVolume(VOLUME);
  expect(await backend.listNamespaces()).toEqual([]);
  expect(fs.readdirSync(path.join(home, 'namespaces'))).toEqual([]);
  expect(fs.readdirSync(path.join(home, 'volumes'))).toEqual([]);
});

test('waitForAgent returns the address once the agent answers over mTLS; agentProblem says what is wrong', async () => {
  await provision();
  const spec = { namespace: NAMESPACE, sessionId: SESSION, volume: VOLUME };
  expect(await backend.agentProblem(NAMESPACE, SESSION)).toEqual({ detail: `agent of session ${SESSION} is not running`, gone: true });
  await expect(backend.waitForAgent(spec, { deadlineMs: 300, onProgress: () => undefined })).rejects.toMatchObject({
    name: 'AgentStartError',
    reason: 'Timeout',
    message: expect.stringContaining('it has not published an address'),
  });

  await backend.startAgent(spec);
  const progress: AgentProgress[] = [];
  const address = await backend.waitForAgent(spec, { deadlineMs: 10_000, onProgress: (p) => progress.push(p) });
  expect(address).toBe(await backend.agentAddress(NAMESPACE));
  expect(progress.at(-1)).toEqual({ stage: 'ready', detail: address });
  expect(backend.agentTlsNames()).toEqual({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  expect(await backend.agentProblem(NAMESPACE, SESSION)).toBeNull();
  // The agent serves, but as another session's agent: not this session's, yet not certainly gone.
  expect(await backend.agentProblem(NAMESPACE, OTHER_SESSION)).toEqual({ detail: expect.stringMatching(/health check failed/), gone: false });

  await backend.stopAgent(NAMESPACE);
  expect(await backend.agentProblem(NAMESPACE, SESSION)).toEqual({ detail: expect.stringMatching(/is not running/), gone: true });
  const aborted = new AbortController();
  const waiting = backend.waitForAgent(spec, { deadlineMs: 60_000, onProgress: () => aborted.abort(), signal: aborted.signal });
  await expect(waiting).rejects.toMatchObject({ name: 'AbortError' });
});

test('syncs a workspace like the developer sees it: what git ignores, bazel links, .git and links out stay out', async () => {
  await provision();
  const source = path.join(home, 'src');
  const files: Record<string, string> = {
    'BUILD.bazel': 'filegroup(name = "all")',
    'pkg/lib.cc': 'int f();',
    'pkg/gone.cc': 'int g();',
    '.gitignore': '*.o\n/scratch/\n',
    'pkg/.gitignore': 'local.txt\n',
    'pkg/lib.o': 'object',
    'pkg/local.txt': 'mine',
    'scratch/notes': 'n',
    '.bazelignore': 'third_party/dep\n',
    'third_party/dep/BUILD': 'read by local Bazel through local_repository',
  };
  fs.mkdirSync(source);
  expect(spawnSync('git', ['init', '-q'], { cwd: source, env: process.env }).status).toBe(0);
  for (const [file, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(source, file)), { recursive: true });
    fs.writeFileSync(path.join(source, file), content);
  }
  fs.symlinkSync('/etc', path.join(source, 'etc')); // leaves the workspace: the proxy refuses it, this warm-up skips it
  fs.symlinkSync(os.tmpdir(), path.join(source, 'bazel-bin'));

  await backend.syncWorkspace(VOLUME, source);
  fs.rmSync(path.join(source, 'pkg/gone.cc'));
  await backend.syncWorkspace(VOLUME, source);

  const workspace = path.join(home, 'volumes', VOLUME, 'workspace');
  const synced = fs.readdirSync(workspace, { recursive: true, encoding: 'utf8' }).filter((entry) => fs.lstatSync(path.join(workspace, entry)).isFile());
  expect(synced.sort()).toEqual(['.bazelignore', '.gitignore', 'BUILD.bazel', 'pkg/.gitignore', 'pkg/lib.cc', 'third_party/dep/BUILD'].sort());
  expect(fs.existsSync(path.join(workspace, 'bazel-bin'))).toBe(false);
  expect(fs.existsSync(path.join(workspace, 'etc'))).toBe(false);

  await expect(backend.syncWorkspace(VOLUME, path.join(home, 'nowhere'))).rejects.toMatchObject({
    name: 'WorkspaceNotFound',
    message: expect.stringContaining(path.join(home, 'nowhere')),
  });
});

test('an agent whose namespace directory vanished is still listed and can be killed', async () => {
  await provision();
  await backend.startAgent({ namespace: NAMESPACE, sessionId: SESSION, volume: VOLUME });
  fs.rmSync(path.join(home, 'namespaces', NAMESPACE), { recursive: true, force: true });

  const [orphan, ...others] = await backend.listAgents();
  expect(others).toEqual([]);
  expect(orphan.namespace).toBe(NAMESPACE);
  expect(await backend.agentAddress(NAMESPACE)).toBeNull();
  expect(await backend.killAgent(orphan)).toBe('removed');
  expect(await backend.killAgent(orphan)).toBe('removed'); // gone already
  expect(await backend.listAgents()).toEqual([]);
  expect(alive(Number(orphan.id))).toBe(false);
});

test("a namespace whose directory vanished: its session's removal stops its agent, and says it removed it", async () => {
  await provision();
  await backend.startAgent({ namespace: NAMESPACE, sessionId: SESSION, volume: VOLUME });
  const [agent] = await backend.listAgents();
  fs.rmSync(path.join(home, 'namespaces', NAMESPACE), { recursive: true, force: true });
  expect(await backend.deleteNamespace(NAMESPACE, SESSION)).toBe('removed');
  expect(await backend.listAgents()).toEqual([]);
  expect(alive(Number(agent.id))).toBe(false);
});

test('an agent killed without warning leaves a stale lock that its successor takes over', async () => {
  await provision();
  const spec = { namespace: NAMESPACE, sessionId: SESSION, volume: VOLUME };
  await backend.startAgent(spec);
  const [killed] = await backend.listAgents();
  process.kill(Number(killed.id), 'SIGKILL');
  await waitFor(() => !alive(Number(killed.id)), 5000, 'the killed agent to be gone');
  expect(await backend.agentAddress(NAMESPACE)).toBeNull();

  await backend.startAgent(spec);
  expect(await backend.agentAddress(NAMESPACE)).not.toBeNull();
  const log = fs.readFileSync(path.join(home, 'namespaces', NAMESPACE, 'agent.log'), 'utf8');
  expect(log).toContain('removing stale lock');
});

test('a namespace given to a new session stops what the old session left in it', async () => {
  await provision();
  await backend.startAgent({ namespace: NAMESPACE, sessionId: SESSION, volume: VOLUME });
  const next = { namespace: NAMESPACE, sessionId: OTHER_SESSION, user: 'alice', volume: VOLUME };

  await backend.ensureNamespace(next);
  expect(await backend.listAgents()).toEqual([]);
  expect(await backend.listNamespaces()).toEqual([{ namespace: NAMESPACE, sessionId: OTHER_SESSION, createdAt: expect.any(Date) }]);
  expect(await backend.agentCertificate(NAMESPACE)).toBeNull();

  // A cleanup pass that found the old session's namespace and agent spares the new session's, and says so.
  await backend.installAgentCredentials(next, await tlsFor({ kind: 'agent', sessionId: OTHER_SESSION }));
  await backend.startAgent(next);
  const [agent] = await backend.listAgents();
  expect(await backend.killAgent({ ...agent, sessionId: SESSION })).toBe('spared');
  expect(await backend.deleteNamespace(NAMESPACE, SESSION)).toBe('spared');
  expect(await backend.listAgents()).toEqual([agent]);
  expect(await backend.deleteNamespace(NAMESPACE, OTHER_SESSION)).toBe('removed');
  expect(await backend.listAgents()).toEqual([]);
  expect(await backend.listNamespaces()).toEqual([]);
});

test('refuses names that are not DNS-1123 labels', async () => {
  const refused = /not a DNS-1123 label/;
  await expect(backend.ensureNamespace({ namespace: '../escape', sessionId: SESSION, user: 'alice', volume: VOLUME })).rejects.toThrow(refused);
  await expect(backend.ensureVolume({ namespace: NAMESPACE, sessionId: SESSION, volume: 'a/b' })).rejects.toThrow(refused);
  await expect(backend.syncWorkspace('..', home)).rejects.toThrow(refused);
  await expect(backend.deleteVolume('')).rejects.toThrow(refused);
  await expect(backend.deleteNamespace('Upper')).rejects.toThrow(refused);
  await expect(backend.killAgent({ namespace: '.', sessionId: SESSION, startedAt: new Date(), id: '1' })).rejects.toThrow(refused);
});

test('the agent rejects bad flags with its usage', () => {
  const [node, agentMain] = defaultAgentCommand();
  const run = spawnSync(node, [agentMain, '--session', SESSION], { encoding: 'utf8' });
  expect(run.status).toBe(2);
  expect(run.stderr).toMatch(/--namespace-dir.*required[\s\S]*usage: agent/);
});

describe('an agent whose control plane is gone (--exit-when-unused-ms)', () => {
  const UNUSED_MS = 1500;

  test('stops itself once nobody has called it for that long, and frees its namespace', async () => {
    const quiet = new LocalBackend({
      home,
      agentCommand: defaultAgentCommand(),
      workerTls: await tlsFor({ kind: 'service', name: 'worker' }),
      exitWhenUnusedMs: UNUSED_MS,
    });
    await provision();
    const spec = { namespace: NAMESPACE, sessionId: SESSION, volume: VOLUME };
    await quiet.startAgent(spec);
    const address = await quiet.waitForAgent(spec, { deadlineMs: 10_000, onProgress: () => undefined });
    const { agent } = await connect(address, { kind: 'proxy', user: 'alice', sessionId: SESSION });
    const [{ id }] = await quiet.listAgents();
    // Calls every 500 ms keep it: it is in use.
    const until = Date.now() + 2 * UNUSED_MS;
    while (Date.now() < until) {
      await unary((cb) => agent.Ping({}, cb));
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(alive(Number(id))).toBe(true);
    // Then nobody calls: it stops, as a SIGTERM would stop it (lock and address file gone).
    await waitFor(() => !alive(Number(id)), 4 * UNUSED_MS, 'the unused agent to stop');
    expect(await quiet.listAgents()).toEqual([]);
    const log = fs.readFileSync(path.join(home, 'namespaces', NAMESPACE, 'agent.log'), 'utf8');
    expect(log).toMatch(/unused for \d+ ms, longer than --exit-when-unused-ms 1500: its control plane is gone: stopping/);
  });

  test('is refused a nonsensical period with a clear message', () => {
    const [command, ...args] = defaultAgentCommand();
    const run = spawnSync(command, [...args, '--namespace-dir', home, '--session', SESSION, '--workspace-dir', home, '--exit-when-unused-ms', '5'], {
      encoding: 'utf8',
    });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain("--exit-when-unused-ms must be a whole number of milliseconds, at least 1000, got '5'");
  });
});

describe('two agents on one volume (a replaced agent still running, as on a node cut off from the cluster)', () => {
  const NEXT = { namespace: 'alice-rbs-0d0e0f', sessionId: OTHER_SESSION, volume: VOLUME };
  const FIRST = { namespace: NAMESPACE, sessionId: SESSION, volume: VOLUME };
  const agentLog = (namespace: string) => fs.readFileSync(path.join(home, 'namespaces', namespace, 'agent.log'), 'utf8');

  /** The first agent serving, and the second session's namespace ready for its own agent on the same volume. */
  async function firstAgentThenNext({ bazelWorkspace = false } = {}): Promise<number> {
    await provision();
    // A workspace: the agent starts its Bazel server at once.
    if (bazelWorkspace) fs.writeFileSync(path.join(home, 'volumes', VOLUME, 'workspace', 'WORKSPACE'), '');
    await backend.startAgent(FIRST);
    await backend.waitForAgent(FIRST, { deadlineMs: 10_000, onProgress: () => undefined });
    await backend.ensureNamespace({ ...NEXT, user: 'alice' });
    await backend.installAgentCredentials(NEXT, await tlsFor({ kind: 'agent', sessionId: OTHER_SESSION }));
    return Number((await backend.listAgents())[0].id);
  }

  test('the older agent sees the newer one take over within a renewal, kills its Bazel server and exits; the newer serves after waiting it out', async () => {
    const older = await firstAgentThenNext({ bazelWorkspace: true });
    await waitFor(() => /Bazel server started ahead of the first command/.test(agentLog(NAMESPACE)), 60_000, 'the first agent to start Bazel');
    const started = Date.now();
    await backend.startAgent(NEXT);
    expect(Date.now() - started).toBeGreaterThanOrEqual(11_000);
    expect(alive(older)).toBe(false);
    const killed = /no longer holds the volume: agent generation \d+ \(pid \d+ on .+\) took it over: stopped serving, killed Bazel server pid (\d+)/.exec(
      agentLog(NAMESPACE),
    );
    expect(killed).not.toBeNull();
    expect(alive(Number(killed![1]))).toBe(false);
    expect(agentLog(NEXT.namespace)).toMatch(new RegExp(`taking the volume over from agent generation \\d+ \\(pid ${older} on .+\\): waiting 11000 ms`));
    expect(await backend.agentProblem(NEXT.namespace, OTHER_SESSION)).toBeNull();
    expect(await backend.agentProblem(NAMESPACE, SESSION)).toMatchObject({ gone: true });
  });

  test('a frozen older agent is waited out; resumed, it stops without serving again', async () => {
    const older = await firstAgentThenNext();
    process.kill(older, 'SIGSTOP'); // neither renews nor reads: as cut off from the volume
    try {
      const started = Date.now();
      await backend.startAgent(NEXT);
      expect(Date.now() - started).toBeGreaterThanOrEqual(11_000);
      expect(alive(older)).toBe(true);
      process.kill(older, 'SIGCONT');
      await waitFor(() => !alive(older), 5_000, 'the resumed older agent to stop');
      expect(agentLog(NAMESPACE)).toMatch(
        /(no longer holds the volume: agent generation \d+ .* took it over|could not confirm its lease on the volume for \d+ ms .*): stopped serving/,
      );
      expect(await backend.agentProblem(NEXT.namespace, OTHER_SESSION)).toBeNull();
    } finally {
      if (alive(older)) process.kill(older, 'SIGCONT');
    }
  });
});

test("a process an agent forked, before it execs (the agent's command line still), is not listed as a second agent", async () => {
  const dir = path.join(home, 'namespaces', NAMESPACE);
  fs.mkdirSync(dir, { recursive: true });
  // An "agent" that starts a child with its own command line, as a fork looks before its exec.
  const script = `if (!process.env.FORKED) require('child_process').spawn(process.execPath, [...process.execArgv, '--', ...process.argv.slice(1)], { env: { ...process.env, FORKED: '1' }, stdio: 'ignore' }); setInterval(() => {}, 1000);`;
  const agent = spawn(process.execPath, ['-e', script, '--', '--namespace-dir', dir, '--session', SESSION], { stdio: 'ignore', detached: true });
  try {
    const forkOf = (pid: number) =>
      fs
        .readdirSync('/proc')
        .filter((entry) => /^\d+$/.test(entry))
        .find((entry) => {
          try {
            return fs.readFileSync(`/proc/${entry}/stat`, 'latin1').split(') ')[1]?.split(' ')[1] === String(pid);
          } catch {
            return false; // gone meanwhile
          }
        });
    await waitFor(() => forkOf(agent.pid!) !== undefined, 10_000, 'the fork');
    expect((await backend.listAgents()).map((a) => [a.id, a.sessionId])).toEqual([[String(agent.pid), SESSION]]);
  } finally {
    process.kill(-agent.pid!, 'SIGKILL');
  }
});
