/**
 * The agent process: serves one session from its namespace directory until SIGTERM/SIGINT.
 * Exit codes: 0 stopped, 1 failed, 2 bad flags, 3 another agent already serves the namespace.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { AGENT_EXIT_ALREADY_RUNNING, type AgentInfo, NAMESPACE_FILES, agentNamespaceDirOf } from '../../lib/compute/local-backend';
import { readTlsMaterial } from '../../lib/grpc/tls';
import { installFile } from '../../lib/files';
import { startAgentServer } from './server';

const USAGE = 'usage: agent --namespace-dir DIR --session ID --workspace-dir DIR [--listen HOST:PORT]';
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;
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
  process.stderr.write(`${new Date().toISOString()} agent[${process.pid}] ${message}\n`);
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
      },
    }));
  } catch (err) {
    throw new ExitError(EXIT_USAGE, (err as Error).message);
  }
  const { 'namespace-dir': namespaceDir, session: sessionId, 'workspace-dir': workspaceDir, listen } = values;
  if (!namespaceDir || !sessionId || !workspaceDir || !listen) {
    throw new ExitError(EXIT_USAGE, '--namespace-dir, --session and --workspace-dir are required');
  }
  // Other agents and the backend recognise this agent by the literal path on its command line.
  if (!path.isAbsolute(namespaceDir)) throw new ExitError(EXIT_USAGE, '--namespace-dir must be an absolute path');
  return { namespaceDir, sessionId, workspaceDir: path.resolve(workspaceDir), listen };
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
  const { namespaceDir, sessionId, workspaceDir, listen } = parseFlags(process.argv.slice(2));
  const lockFile = path.join(namespaceDir, NAMESPACE_FILES.agentLock);
  const infoFile = path.join(namespaceDir, NAMESPACE_FILES.agentInfo);

  await acquireLock(lockFile, namespaceDir);
  try {
    if (!fs.statSync(workspaceDir, { throwIfNoEntry: false })?.isDirectory()) {
      throw new Error(`workspace ${workspaceDir} is not a directory`);
    }
    const tls = await readTlsMaterial(path.join(namespaceDir, NAMESPACE_FILES.tls), 'agent');
    const server = await startAgentServer({ sessionId, workspaceDir, tls, listen });
    // Two agents breaking the same stale lock can both think they won; the one still named keeps it.
    if (readPid(lockFile) !== process.pid) {
      await server.stop();
      throw new ExitError(AGENT_EXIT_ALREADY_RUNNING, `lost ${lockFile} to agent ${readPid(lockFile)} while starting`);
    }
    const info: AgentInfo = { pid: process.pid, address: server.address, startedAt: new Date().toISOString() };
    await installFile(infoFile, JSON.stringify(info), 0o644, true);
    log(`serving session ${sessionId} on ${server.address} (workspace ${workspaceDir})`);

    log(`${await stopRequested}: stopping`);
    await server.stop();
    return 0;
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
    process.exit(code);
  },
  (err: unknown) => {
    const exitCode = err instanceof ExitError ? err.exitCode : EXIT_FAILED;
    log(err instanceof Error ? err.message : String(err));
    if (exitCode === EXIT_USAGE) process.stderr.write(`${USAGE}\n`);
    process.exit(exitCode);
  },
);
