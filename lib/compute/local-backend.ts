/**
 * The compute backend of the embedded default: a namespace is a directory, a volume is a directory,
 * and an agent is a detached local process that outlives the worker that started it. Running
 * agents are found through /proc, so a crash that loses every file still leaves them killable.
 */
import { LOCAL_AGENT_LEASE_MS, takeoverWaitMs } from '../agent-lease';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { statFields } from '../proc-stat';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { type RotatingTls, type TlsMaterial, readTlsMaterial, writeTlsMaterial } from '../grpc/tls';
import { type Child, startChild } from '../local/child';
import { isDns1123Label } from '../naming';
import { SOURCE_SET_ARGS, sourceSetRules } from '../sync/source-set';
import { installFile } from '../files';
import { removeTree } from '../remove-tree';
import { treeBytes } from '../tree-size';
import { agentIsServing } from './agent-health';
import { checkLabel } from './names';
import {
  type AgentCredentials,
  type AgentProblem,
  type AgentSpec,
  AgentStartError,
  type AgentTlsNames,
  type AgentWait,
  type ComputeBackend,
  type ManagedNamespace,
  NamespaceGoneError,
  type NamespaceSpec,
  type Removal,
  type RunningAgent,
} from './backend';

/** What a namespace directory holds; the agent process (services/agent/main.ts) shares this layout. */
export const NAMESPACE_FILES = {
  record: 'namespace.json',
  tls: 'tls',
  agentInfo: 'agent.json',
  agentLock: 'agent.pid',
  agentLog: 'agent.log',
} as const;

/** Written by a serving agent to NAMESPACE_FILES.agentInfo. */
export interface AgentInfo {
  pid: number;
  address: string;
  /** Its Prometheus endpoint (on loopback, a port of its own). */
  metricsAddress?: string;
  startedAt: string;
}

/** The agent exits with this when another agent already serves its namespace. */
export const AGENT_EXIT_ALREADY_RUNNING = 3;

interface NamespaceRecord {
  sessionId: string;
  user: string;
  createdAt: string;
}

/** An agent may first wait out the volume's previous holder (lib/agent-lease.ts), then starts. */
const AGENT_START_TIMEOUT_MS = takeoverWaitMs(LOCAL_AGENT_LEASE_MS) + 20_000;
const AGENT_STOP_GRACE_MS = 5_000;
const AGENT_KILL_WAIT_MS = 2_000;
const POLL_MS = 25;
/** Between health checks of a starting agent (each is a TLS handshake). */
const READY_POLL_MS = 50;

/** The agent as built next to this module: in dist/ when compiled, in <repo>/dist when run from sources. */
export function defaultAgentCommand(): string[] {
  const up = path.resolve(__dirname, '..', '..');
  const dist = path.basename(up) === 'dist' ? up : path.join(up, 'dist');
  return [process.execPath, path.join(dist, 'services', 'agent', 'main.js')];
}

export interface LocalBackendOptions {
  home: string;
  agentCommand: string[];
  /** The worker's identity, for the health checks of waitForAgent and agentProblem. */
  workerTls?: TlsMaterial | RotatingTls;
  /** How quiet a proxy's connection may be before the agent pings it (RBS_KEEPALIVE_MS); the agent's default if absent. */
  keepaliveMs?: number;
  /**
   * An agent nobody has called for this long stops itself and its Bazel server: the control plane
   * that would stop it is gone (npm start ended). Absent: agents wait to be stopped.
   */
  exitWhenUnusedMs?: number;
  /** The OTLP collector the agents export their spans to (lib/tracing); none if absent. */
  tracesEndpoint?: string;
}

export class LocalBackend implements ComputeBackend {
  readonly kind = 'local' as const;
  readonly initialSync = 'worker' as const;
  readonly agentLease = { ms: LOCAL_AGENT_LEASE_MS, source: 'fixed for local agents' };
  private readonly home: string;
  private readonly agentCommand: string[];
  private readonly workerTls: TlsMaterial | RotatingTls | undefined;
  private readonly keepaliveMs: number | undefined;
  private readonly exitWhenUnusedMs: number | undefined;
  private readonly tracesEndpoint: string | undefined;

  constructor(options: LocalBackendOptions) {
    if (options.agentCommand.length === 0) throw new Error('LocalBackend needs a non-empty agentCommand');
    this.home = path.resolve(options.home);
    this.agentCommand = options.agentCommand;
    this.workerTls = options.workerTls;
    this.keepaliveMs = options.keepaliveMs;
    this.exitWhenUnusedMs = options.exitWhenUnusedMs;
    this.tracesEndpoint = options.tracesEndpoint;
  }

  async ensureNamespace(spec: NamespaceSpec): Promise<void> {
    const dir = this.namespaceDir(spec.namespace);
    const existing = readNamespaceRecord(dir);
    if (existing?.sessionId === spec.sessionId) return;
    if (fs.existsSync(dir)) {
      // One workflow owns a namespace at a time, and a new session exists only once the old one's
      // workflow has finished: whatever the old session left behind is an orphan.
      for (const pid of agentsServing(dir)) await terminateAgent(pid, dir);
      removeTree(dir);
    }
    // Built under a temporary name and renamed, so a namespace directory never lacks its record.
    const root = path.dirname(dir);
    fs.mkdirSync(root, { recursive: true });
    const staging = fs.mkdtempSync(path.join(root, `.${spec.namespace}-`));
    const record: NamespaceRecord = { sessionId: spec.sessionId, user: spec.user, createdAt: new Date().toISOString() };
    fs.writeFileSync(path.join(staging, NAMESPACE_FILES.record), JSON.stringify(record));
    try {
      fs.renameSync(staging, dir);
    } catch (err) {
      fs.rmSync(staging, { recursive: true, force: true });
      const winner = readNamespaceRecord(dir);
      if (winner?.sessionId === spec.sessionId) return; // a concurrent ensureNamespace made the same one
      throw new Error(`cannot create namespace ${spec.namespace} for session ${spec.sessionId}: ${errorMessage(err)}`);
    }
  }

  async ensureVolume({ namespace, volume }: AgentSpec): Promise<void> {
    checkLabel('namespace', namespace);
    fs.mkdirSync(this.workspaceDir(volume), { recursive: true });
    await installFile(path.join(this.volumeDir(volume), 'namespace'), `${namespace}\n`, 0o644, true);
  }

  async agentCertificate(namespace: string): Promise<string | null> {
    try {
      return (await readTlsMaterial(this.tlsDir(namespace), 'agent')).certPem;
    } catch {
      return null; // missing or unreadable: either way the agent could not use it
    }
  }

  /** Agents listen on loopback, and clients dial them by IP or as localhost. */
  agentTlsNames(): AgentTlsNames {
    return { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] };
  }

  async installAgentCredentials({ namespace }: AgentSpec, credentials: AgentCredentials): Promise<void> {
    this.requireNamespace(namespace);
    await writeTlsMaterial(this.tlsDir(namespace), 'agent', credentials);
  }

  async startAgent(spec: AgentSpec): Promise<void> {
    const dir = this.namespaceDir(spec.namespace);
    const workspace = this.workspaceDir(spec.volume);
    if (liveAgentInfo(dir)) return;
    const record = this.requireNamespace(spec.namespace);
    if (record.sessionId !== spec.sessionId) {
      throw new Error(`namespace ${spec.namespace} belongs to session ${record.sessionId}, not ${spec.sessionId}`);
    }
    if (!fs.existsSync(workspace)) throw new Error(`volume ${spec.volume} does not exist: ensureVolume first`);
    const child = this.spawnAgent(dir, spec.sessionId, workspace);
    await this.awaitAgent(spec.namespace, child);
  }

  /** Where the agent listens once it has started, or null while it has not. */
  async agentAddress(namespace: string): Promise<string | null> {
    return liveAgentInfo(this.namespaceDir(namespace))?.address ?? null;
  }

  /** Ready means: the agent answers a health check over mTLS as its session's agent. */
  async waitForAgent({ namespace, sessionId }: AgentSpec, { deadlineMs, onProgress, signal }: AgentWait): Promise<string> {
    const deadline = Date.now() + deadlineMs;
    let problem = 'it has not published an address';
    for (;;) {
      const address = await this.agentAddress(namespace);
      if (address) {
        const answer = await agentIsServing(address, sessionId, this.requireWorkerTls());
        if (answer === null) {
          onProgress({ stage: 'ready', detail: address });
          return address;
        }
        problem = answer;
      }
      if (Date.now() >= deadline) {
        throw new AgentStartError('Timeout', `agent of session ${sessionId} in ${namespace} not ready after ${deadlineMs} ms: ${problem}`);
      }
      onProgress({ stage: 'waiting', detail: problem });
      await sleep(READY_POLL_MS, undefined, { signal });
    }
  }

  async agentProblem(namespace: string, sessionId: string): Promise<AgentProblem | null> {
    const address = await this.agentAddress(namespace);
    if (!address) return { detail: `agent of session ${sessionId} is not running`, gone: true };
    const answer = await agentIsServing(address, sessionId, this.requireWorkerTls());
    return answer === null ? null : { detail: answer, gone: false };
  }

  async syncWorkspace(volume: string, sourceDir: string): Promise<void> {
    const destination = this.workspaceDir(volume);
    const source = path.resolve(sourceDir);
    if (!isDirectory(source)) {
      const err = new Error(`workspace ${source} does not exist or is not a directory on this machine`);
      err.name = 'WorkspaceNotFound';
      throw err;
    }
    if (!isDirectory(destination)) throw new Error(`volume ${volume} does not exist: ensureVolume first`);
    // A warm-up: the proxy syncs again before every command, and names the links that leave the
    // workspace then; here they are left out, as the agent's rsync leaves them out.
    const rules = await sourceSetRules(source, { outsideLinks: 'skip' });
    const args = ['-a', '--safe-links', '--delete', ...SOURCE_SET_ARGS, `${source}/`, `${destination}/`];
    try {
      const rsync = promisify(execFile)('rsync', args, { maxBuffer: 16 * 1024 * 1024 });
      rsync.child.stdin!.end(rules);
      await rsync;
    } catch (err) {
      const { code, stderr } = err as { code?: unknown; stderr?: string };
      throw new Error(`rsync of ${source} into volume ${volume} failed (exit ${code}): ${stderr?.trim() || errorMessage(err)}`);
    }
  }

  async stopAgent(namespace: string): Promise<void> {
    const dir = this.namespaceDir(namespace);
    await Promise.all(agentsServing(dir).map((pid) => terminateAgent(pid, dir)));
  }

  async deleteNamespace(namespace: string, ofSession?: string): Promise<Removal> {
    const dir = this.namespaceDir(namespace);
    const judged = () => ofSession === undefined || !fs.existsSync(dir) || readNamespaceRecord(dir)?.sessionId === ofSession;
    if (!judged()) return 'spared';
    const agents = runningAgents().filter((agent) => agent.namespaceDir === dir && (ofSession === undefined || agent.sessionId === ofSession));
    await Promise.all(agents.map((agent) => terminateAgent(agent.pid, dir)));
    // Judged again with no wait in between: a new session may have made it again while the agents stopped.
    if (!fs.existsSync(dir)) return 'removed';
    if (!judged()) return 'spared';
    removeTree(dir);
    return 'removed';
  }

  async deleteVolume(volume: string): Promise<void> {
    removeTree(this.volumeDir(volume));
  }

  async volumeSize(volume: string): Promise<number | null> {
    return treeBytes(this.volumeDir(volume));
  }

  async listNamespaces(): Promise<ManagedNamespace[]> {
    const root = path.join(this.home, 'namespaces');
    const names = fs.existsSync(root) ? fs.readdirSync(root).filter(isDns1123Label) : [];
    return names.flatMap((namespace) => {
      const record = readNamespaceRecord(path.join(root, namespace));
      return record ? [{ namespace, sessionId: record.sessionId, createdAt: new Date(record.createdAt) }] : [];
    });
  }

  async listAgents(): Promise<RunningAgent[]> {
    const root = path.join(this.home, 'namespaces');
    return runningAgents()
      .filter((agent) => path.dirname(agent.namespaceDir) === root)
      .map((agent) => ({
        namespace: path.basename(agent.namespaceDir),
        sessionId: agent.sessionId,
        startedAt: agent.startedAt,
        id: String(agent.pid),
      }));
  }

  async killAgent(agent: RunningAgent): Promise<Removal> {
    const pid = Number(agent.id);
    if (!Number.isSafeInteger(pid) || pid <= 0) throw new Error(`'${agent.id}' is not a local agent's pid`);
    const dir = this.namespaceDir(agent.namespace);
    const found = agentProcessOf(pid);
    if (!found) return 'removed'; // gone
    if (found.sessionId !== agent.sessionId) return 'spared'; // its pid now another agent's
    await terminateAgent(pid, dir);
    return 'removed';
  }

  private spawnAgent(dir: string, sessionId: string, workspace: string): Child {
    const [command, ...args] = this.agentCommand;
    const flags = ['--namespace-dir', dir, '--session', sessionId, '--workspace-dir', workspace];
    if (this.keepaliveMs !== undefined) flags.push('--keepalive-ms', String(this.keepaliveMs));
    if (this.exitWhenUnusedMs !== undefined) flags.push('--exit-when-unused-ms', String(this.exitWhenUnusedMs));
    if (this.tracesEndpoint !== undefined) flags.push('--otlp-traces-endpoint', this.tracesEndpoint);
    // Orders the volume's agents (services/agent/volume-lease.ts): a later start is newer.
    flags.push('--generation', String(Date.now()), '--lease-ms', String(this.agentLease.ms));
    // Builds run under the agent: it gets nothing of the worker's environment (credentials
    // included), and a home on the volume, so Bazel's per-user state lives with the workspace.
    const home = path.join(path.dirname(workspace), 'home');
    fs.mkdirSync(home, { recursive: true });
    const env = { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin', HOME: home, LANG: 'C.UTF-8' };
    const child = startChild('agent', command, [...args, ...flags], { logFile: path.join(dir, NAMESPACE_FILES.agentLog), env });
    child.process.unref(); // the agent must outlive the worker that spawns it
    return child;
  }

  /**
   * Returns once agent.json names a live agent and `child` is either that agent or has exited
   * because another one won the lock, so no duplicate is left starting behind the caller's back.
   */
  private async awaitAgent(namespace: string, child: Child): Promise<void> {
    const dir = this.namespaceDir(namespace);
    const deadline = Date.now() + AGENT_START_TIMEOUT_MS;
    for (;;) {
      const lostRace = child.process.exitCode === AGENT_EXIT_ALREADY_RUNNING;
      const serving = liveAgentInfo(dir)?.pid;
      if (serving !== undefined && (serving === child.process.pid || lostRace)) return;
      let failure = lostRace ? null : child.exited();
      if (failure === null && Date.now() > deadline) {
        await this.stopAgent(namespace); // a hung agent would hold the lock against every retry
        failure = `agent did not start within ${AGENT_START_TIMEOUT_MS / 1000} s`;
      }
      if (failure !== null) throw new Error(`namespace ${namespace}: ${failure}; its log ends with:\n${child.logTail()}`);
      await sleep(POLL_MS);
    }
  }

  private requireWorkerTls(): TlsMaterial {
    if (!this.workerTls) throw new Error('this LocalBackend was built without workerTls: it cannot check agents');
    return 'current' in this.workerTls ? this.workerTls.current() : this.workerTls;
  }

  private requireNamespace(namespace: string): NamespaceRecord {
    const record = readNamespaceRecord(this.namespaceDir(namespace));
    if (!record) throw new NamespaceGoneError(`namespace ${namespace} does not exist: it was removed, or never made (ensureNamespace first)`);
    return record;
  }

  private namespaceDir(namespace: string): string {
    return path.join(this.home, 'namespaces', checkLabel('namespace', namespace));
  }

  private tlsDir(namespace: string): string {
    return path.join(this.namespaceDir(namespace), NAMESPACE_FILES.tls);
  }

  private volumeDir(volume: string): string {
    return path.join(this.home, 'volumes', checkLabel('volume', volume));
  }

  private workspaceDir(volume: string): string {
    return path.join(this.volumeDir(volume), 'workspace');
  }
}

interface AgentProcess {
  pid: number;
  namespaceDir: string;
  sessionId: string;
  startedAt: Date;
}

/**
 * Process `pid` if it is an agent, else null (gone, a zombie, or something else). Checking the
 * command line, not just the pid, makes a recycled pid harmless.
 */
function agentProcessOf(pid: number): AgentProcess | null {
  let argv: string[];
  let startedAt: Date;
  try {
    argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    startedAt = new Date(fs.statSync(`/proc/${pid}`).ctimeMs); // /proc/<pid> appears when the process starts
  } catch {
    return null;
  }
  const flag = (name: string) => (argv.includes(name) ? (argv[argv.indexOf(name) + 1] ?? null) : null);
  const namespaceDir = flag('--namespace-dir');
  const sessionId = flag('--session');
  return namespaceDir && sessionId ? { pid, namespaceDir, sessionId, startedAt } : null;
}

/** The --namespace-dir of process `pid` if it is an agent, else null. */
export function agentNamespaceDirOf(pid: number): string | null {
  return agentProcessOf(pid)?.namespaceDir ?? null;
}

/**
 * Every agent running. A process an agent has just forked (to run rsync or Bazel) keeps the agent's
 * command line until it execs: a child of an agent is never counted as one.
 */
function runningAgents(): AgentProcess[] {
  const candidates = fs
    .readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .flatMap((entry) => agentProcessOf(Number(entry)) ?? []);
  const pids = new Set(candidates.map((agent) => agent.pid));
  return candidates.filter((agent) => !pids.has(parentOf(agent.pid) ?? 0));
}

/** Field 4 of /proc/<pid>/stat; null once gone. */
function parentOf(pid: number): number | null {
  try {
    return Number(statFields(fs.readFileSync(`/proc/${pid}/stat`, 'latin1'))[4 - 3]);
  } catch {
    return null;
  }
}

function agentsServing(namespaceDir: string): number[] {
  return runningAgents()
    .filter((agent) => agent.namespaceDir === namespaceDir)
    .map((agent) => agent.pid);
}

function liveAgentInfo(namespaceDir: string): AgentInfo | null {
  const info = readJson<AgentInfo>(path.join(namespaceDir, NAMESPACE_FILES.agentInfo));
  return info && agentNamespaceDirOf(info.pid) === namespaceDir ? info : null;
}

/**
 * SIGTERM, then SIGKILL after the grace period; returns once `pid` no longer serves `namespaceDir`.
 * A SIGCONT follows the SIGTERM: a frozen agent (SIGSTOP) wakes to act on it, instead of using up the grace.
 */
async function terminateAgent(pid: number, namespaceDir: string): Promise<void> {
  const serving = () => agentNamespaceDirOf(pid) === namespaceDir;
  for (const [signal, waitMs] of [
    ['SIGTERM', AGENT_STOP_GRACE_MS],
    ['SIGKILL', AGENT_KILL_WAIT_MS],
  ] as const) {
    if (!serving()) return;
    signalAgent(pid, signal);
    if (signal === 'SIGTERM') signalAgent(pid, 'SIGCONT');
    for (const deadline = Date.now() + waitMs; serving() && Date.now() < deadline;) await sleep(POLL_MS);
  }
  if (serving()) throw new Error(`agent ${pid} of ${namespaceDir} survived SIGKILL`);
}

/** Signals the agent's process group (it leads one when spawned detached), else the process alone. */
function signalAgent(pid: number, signal: NodeJS.Signals): void {
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, signal);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }
}

function readNamespaceRecord(dir: string): NamespaceRecord | null {
  return readJson<NamespaceRecord>(path.join(dir, NAMESPACE_FILES.record));
}

function readJson<T>(file: string): T | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new Error(`${file} is not valid JSON: ${errorMessage(err)}`);
  }
}

function isDirectory(dir: string): boolean {
  return fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory() ?? false;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
