/**
 * The agent process: serves one session until SIGTERM/SIGINT. Two ways to run it:
 * - local (LocalBackend): flags name the namespace directory, whose lock makes it the only agent there;
 * - in a pod (KubernetesBackend): no flags, RBS_AGENT_* variables; Kubernetes keeps it the only one.
 * Exit codes: 0 stopped, 1 failed, 2 bad flags or settings, 3 another agent already serves the namespace,
 * 4 another agent holds the session volume, or took it over (volume-lease.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { MAX_AGENT_LEASE_MS, MIN_AGENT_LEASE_MS } from '../../lib/agent-lease';
import { AGENT_EXIT_ALREADY_RUNNING, type AgentInfo, NAMESPACE_FILES, agentNamespaceDirOf } from '../../lib/compute/local-backend';
import { fileServiceTls } from '../../lib/pki/service-tls';
import { installFile } from '../../lib/files';
import { checkKeepaliveMs } from '../../lib/grpc/keepalive';
import { InvalidInputError, validateSessionId } from '../../lib/validate';
import { agentLog, logForSession } from './log';
import { type AgentServer, type AgentServerOptions, startAgentServer } from './server';
import { LeaseRefused } from './volume-lease';
import { killDescendantsNow } from './bazel-process';
import { exitAfterTraces, startTracing } from '../../lib/tracing/tracing';

const USAGE = [
  'usage: agent --namespace-dir DIR --session ID --workspace-dir DIR [--listen HOST:PORT] [--metrics-listen HOST:PORT]',
  '             [--keepalive-ms MS] [--exit-when-unused-ms MS] [--otlp-traces-endpoint URL]',
  '             [--generation N] [--lease-ms MS]',
  '   or: agent, in a pod, with RBS_AGENT_SESSION, RBS_AGENT_TLS_DIR and RBS_AGENT_VOLUME_DIR set',
  '       (and optionally RBS_AGENT_LISTEN, default 0.0.0.0:9443, RBS_AGENT_HEALTH_LISTEN, RBS_AGENT_METRICS_LISTEN,',
  '       RBS_AGENT_TRACES_ENDPOINT, RBS_AGENT_GENERATION and RBS_AGENT_LEASE_MS)',
].join('\n');
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;
const EXIT_VOLUME_LOST = 4;
const LOCK_ATTEMPTS = 5;

class ExitError extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
  }
}

function log(message: string): void {
  agentLog().info(message);
}

function parseFlags(argv: string[]) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        'namespace-dir': { type: 'string' },
        session: { type: 'string' },
        'workspace-dir': { type: 'string' },
        listen: { type: 'string', default: '127.0.0.1:0' },
        'metrics-listen': { type: 'string', default: '127.0.0.1:0' },
        'keepalive-ms': { type: 'string' },
        'exit-when-unused-ms': { type: 'string' },
        // A flag, not the environment: the agent's environment is the builds' (local-backend.ts).
        'otlp-traces-endpoint': { type: 'string' },
        generation: { type: 'string' },
        'lease-ms': { type: 'string' },
      },
    }));
  } catch (err) {
    throw new ExitError(EXIT_USAGE, (err as Error).message);
  }
  const { 'namespace-dir': namespaceDir, session: sessionId, 'workspace-dir': workspaceDir, listen } = values;
  let keepaliveMs: number | undefined;
  try {
    keepaliveMs = values['keepalive-ms'] === undefined ? undefined : checkKeepaliveMs(Number(values['keepalive-ms']), '--keepalive-ms');
  } catch (err) {
    throw new ExitError(EXIT_USAGE, (err as Error).message);
  }
  const unused = values['exit-when-unused-ms'];
  const exitWhenUnusedMs = unused === undefined ? undefined : Number(unused);
  if (exitWhenUnusedMs !== undefined && !(Number.isSafeInteger(exitWhenUnusedMs) && exitWhenUnusedMs >= 1000)) {
    throw new ExitError(EXIT_USAGE, `--exit-when-unused-ms must be a whole number of milliseconds, at least 1000, got '${unused}'`);
  }
  if (!namespaceDir || !sessionId || !workspaceDir || !listen) {
    throw new ExitError(EXIT_USAGE, '--namespace-dir, --session and --workspace-dir are required');
  }
  // Other agents and the backend recognise this agent by the literal path on its command line.
  if (!path.isAbsolute(namespaceDir)) throw new ExitError(EXIT_USAGE, '--namespace-dir must be an absolute path');
  const metricsListen = values['metrics-listen'];
  const tracesEndpoint = values['otlp-traces-endpoint'];
  try {
    startTracing('agent', tracesEndpoint ? { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: tracesEndpoint } : {});
  } catch (err) {
    throw new ExitError(EXIT_USAGE, `--otlp-traces-endpoint: ${(err as Error).message}`);
  }
  const lease = leaseSettings(values.generation, values['lease-ms'], '--generation', '--lease-ms');
  return { namespaceDir, sessionId, workspaceDir: path.resolve(workspaceDir), listen, metricsListen, keepaliveMs, exitWhenUnusedMs, lease };
}

/** The volume lease's settings: a generation is a whole number (the control plane stamps milliseconds). */
function leaseSettings(generation: string | undefined, leaseMs: string | undefined, generationName: string, leaseMsName: string) {
  const whole = (text: string | undefined, name: string, min: number, max = Number.MAX_SAFE_INTEGER) => {
    if (text === undefined || text === '') return undefined;
    const value = Number(text);
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < min || value > max) {
      throw new ExitError(EXIT_USAGE, `${name} must be a whole number from ${min} to ${max}, got '${text}'`);
    }
    return value;
  };
  // No longer than a successor waits for at most (volume-lease.ts).
  return { generation: whole(generation, generationName, 0), leaseMs: whole(leaseMs, leaseMsName, MIN_AGENT_LEASE_MS, MAX_AGENT_LEASE_MS) };
}

/** The pod's settings (lib/compute/kubernetes/objects.ts agentPod sets them). */
function podSettings(env: NodeJS.ProcessEnv) {
  const required = (name: string) => {
    const value = env[name];
    if (!value) throw new ExitError(EXIT_USAGE, `${name} is required in a pod`);
    if (name.endsWith('_DIR') && !path.isAbsolute(value)) throw new ExitError(EXIT_USAGE, `${name} must be an absolute path, got '${value}'`);
    return value;
  };
  let sessionId: string;
  try {
    sessionId = validateSessionId(required('RBS_AGENT_SESSION'));
  } catch (err) {
    if (err instanceof InvalidInputError) throw new ExitError(EXIT_USAGE, `RBS_AGENT_SESSION: ${err.message}`);
    throw err;
  }
  const tracesEndpoint = env.RBS_AGENT_TRACES_ENDPOINT;
  try {
    startTracing('agent', tracesEndpoint ? { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: tracesEndpoint } : {});
  } catch (err) {
    throw new ExitError(EXIT_USAGE, `RBS_AGENT_TRACES_ENDPOINT: ${(err as Error).message}`);
  }
  delete process.env.RBS_AGENT_TRACES_ENDPOINT; // read once; builds need not see it
  return {
    sessionId,
    tlsDir: required('RBS_AGENT_TLS_DIR'),
    volumeDir: required('RBS_AGENT_VOLUME_DIR'),
    listen: env.RBS_AGENT_LISTEN || '0.0.0.0:9443',
    healthListen: env.RBS_AGENT_HEALTH_LISTEN || undefined,
    metricsListen: env.RBS_AGENT_METRICS_LISTEN || undefined,
    lease: leaseSettings(env.RBS_AGENT_GENERATION, env.RBS_AGENT_LEASE_MS, 'RBS_AGENT_GENERATION', 'RBS_AGENT_LEASE_MS'),
  };
}

function readPid(file: string): number | null {
  try {
    const pid = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/**
 * Takes the namespace's agent.pid lock or throws ExitError(3). installFile creates it exclusively
 * (like O_EXCL) and whole, so a reader never sees it without its pid. A lock whose pid is not an
 * agent for this directory (dead, recycled, or our own pid from a previous life) is stale.
 */
async function acquireLock(lockFile: string, namespaceDir: string): Promise<void> {
  for (let attempt = 0; attempt < LOCK_ATTEMPTS; attempt++) {
    if (await installFile(lockFile, `${process.pid}\n`, 0o644, false)) return;
    const holder = readPid(lockFile);
    if (holder !== null && holder !== process.pid && agentNamespaceDirOf(holder) === namespaceDir) {
      throw new ExitError(AGENT_EXIT_ALREADY_RUNNING, `agent ${holder} already serves ${namespaceDir}`);
    }
    log(`removing stale lock ${lockFile} (pid ${holder ?? 'unreadable'})`);
    fs.rmSync(lockFile, { force: true });
  }
  throw new Error(`could not take ${lockFile} in ${LOCK_ATTEMPTS} attempts: it keeps changing hands`);
}

async function main(): Promise<number> {
  // Listen first: a signal during startup must still end in a clean stop, not a stale lock.
  const stopRequested = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  const argv = process.argv.slice(2);
  if (argv.length === 0 && process.env.RBS_AGENT_SESSION !== undefined) return runInPod(podSettings(process.env), stopRequested);
  return runLocal(parseFlags(argv), stopRequested);
}

/**
 * Serves until a stop signal, then stops the server (and the Bazel server it drives). An agent
 * that lost its volume exits at once: no graceful stop, nothing more written to the volume.
 */
async function serveUntilStopped(server: AgentServer, stopRequested: Promise<string>): Promise<number> {
  const lost = server.lost.then((why) => ({ why }));
  const ended = await Promise.race([stopRequested.then((signal) => ({ signal })), lost]);
  if ('why' in ended) {
    // Its rsyncs, Bazel clients and `bazel run`s would outlive it (no call's cancellation runs before the exit).
    const killed = killDescendantsNow();
    throw new ExitError(EXIT_VOLUME_LOST, `${ended.why}${killed.length ? `; killed its processes ${killed.join(', ')}` : ''}`);
  }
  log(`${ended.signal}: stopping`);
  await server.stop();
  return 0;
}

/**
 * Resolves once nobody (neither its proxy nor the worker's probes, which come while the session
 * is READY) has called the agent for `ms`: its control plane is gone and nobody else will stop it.
 */
function whenUnused(server: AgentServer, ms: number, stopped: Promise<unknown>): Promise<string> {
  return new Promise((resolve) => {
    const timer = setInterval(
      () => {
        if (server.usage.unusedForMs() < ms) return;
        clearInterval(timer);
        resolve(`unused for ${server.usage.unusedForMs()} ms, longer than --exit-when-unused-ms ${ms}: its control plane is gone`);
      },
      Math.min(60_000, Math.ceil(ms / 4)),
    );
    void stopped.finally(() => clearInterval(timer));
  });
}

async function start(options: AgentServerOptions, stopRequested: Promise<unknown>): Promise<AgentServer> {
  if (!fs.statSync(options.workspaceDir, { throwIfNoEntry: false })?.isDirectory()) {
    throw new Error(`workspace ${options.workspaceDir} is not a directory`);
  }
  const stopping = new AbortController(); // ends a wait for the volume's previous holder
  void stopRequested.then(() => stopping.abort());
  const lease = { ...options.lease, signal: stopping.signal };
  const server = await startAgentServer({ ...options, lease, warmBazel: { log } }).catch((err: Error) => {
    if (stopping.signal.aborted) throw new ExitError(0, `stopped before serving: ${err.message}`);
    throw err instanceof LeaseRefused ? new ExitError(EXIT_VOLUME_LOST, err.message) : err;
  });
  const health = server.healthAddress ? `, health on ${server.healthAddress}` : '';
  const metrics = server.metricsAddress ? `, metrics on http://${server.metricsAddress}/metrics` : '';
  log(`serving session ${options.sessionId} on ${server.address}${health}${metrics} (workspace ${options.workspaceDir})`);
  return server;
}

/**
 * The volume is mounted at volumeDir and holds the workspace copy, Bazel's output base beside it
 * (server.ts) and HOME (set by the pod): all survive the pod. A new volume starts empty.
 */
async function runInPod(settings: ReturnType<typeof podSettings>, stopRequested: Promise<NodeJS.Signals>): Promise<number> {
  const { sessionId, tlsDir, volumeDir, listen, healthListen, metricsListen, lease } = settings;
  logForSession(sessionId);
  const workspaceDir = path.join(volumeDir, 'workspace');
  for (const dir of [workspaceDir, process.env.HOME]) if (dir) fs.mkdirSync(dir, { recursive: true });
  const tls = await fileServiceTls(tlsDir, 'agent'); // re-read: the worker renews it in place
  const server = await start({ sessionId, workspaceDir, tls, listen, healthListen, metricsListen, lease }, stopRequested);
  return serveUntilStopped(server, stopRequested);
}

async function runLocal(flags: ReturnType<typeof parseFlags>, stopRequested: Promise<NodeJS.Signals>): Promise<number> {
  const { namespaceDir, sessionId, workspaceDir, listen, metricsListen, keepaliveMs, exitWhenUnusedMs, lease } = flags;
  logForSession(sessionId);
  const lockFile = path.join(namespaceDir, NAMESPACE_FILES.agentLock);
  const infoFile = path.join(namespaceDir, NAMESPACE_FILES.agentInfo);

  await acquireLock(lockFile, namespaceDir);
  try {
    const tls = await fileServiceTls(path.join(namespaceDir, NAMESPACE_FILES.tls), 'agent');
    const server = await start({ sessionId, workspaceDir, tls, listen, metricsListen, keepaliveMs, lease }, stopRequested);
    // Two agents breaking the same stale lock can both think they won; the one still named keeps it.
    if (readPid(lockFile) !== process.pid) {
      await server.stop();
      throw new ExitError(AGENT_EXIT_ALREADY_RUNNING, `lost ${lockFile} to agent ${readPid(lockFile)} while starting`);
    }
    const info: AgentInfo = { pid: process.pid, address: server.address, metricsAddress: server.metricsAddress, startedAt: new Date().toISOString() };
    await installFile(infoFile, JSON.stringify(info), 0o644, true);
    const stop = exitWhenUnusedMs === undefined ? stopRequested : Promise.race([stopRequested, whenUnused(server, exitWhenUnusedMs, stopRequested)]);
    return await serveUntilStopped(server, stop);
  } finally {
    // Only the lock's holder owns agent.json; an agent that lost the lock must not touch either.
    if (readPid(lockFile) === process.pid) {
      fs.rmSync(infoFile, { force: true });
      fs.rmSync(lockFile, { force: true });
    }
  }
}

main().then(
  (code) => {
    log('stopped');
    void exitAfterTraces(code);
  },
  (err: unknown) => {
    const exitCode = err instanceof ExitError ? err.exitCode : EXIT_FAILED;
    agentLog().error(err instanceof Error ? err.message : String(err));
    if (exitCode === EXIT_USAGE) process.stderr.write(`${USAGE}\n`);
    void exitAfterTraces(exitCode);
  },
);
