/**
 * Pushes the developer's workspace to the session's agent with the local rsync, through the
 * agent's Sync stream (rsh.ts is rsync's remote shell). rsync's own delta algorithm and quick check
 * make a sync after a small edit cost about a file-list exchange.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TlsMaterial } from '../../lib/grpc/tls';
import { repoRoot } from '../../lib/local/tools';
import { workspaceFilters } from '../../lib/sync/filters';
import { rshEnv } from './rsh';

export interface SyncWorkspaceOptions {
  /** The workspace on this machine. */
  workspace: string;
  /** host:port of the session's agent. */
  agentAddress: string;
  /** The proxy's certificate for the session. */
  tls: TlsMaterial;
  sessionId: string;
  /** Names the resulting state for the agent's Run; a fresh one by default. */
  syncId?: string;
}

/**
 * What the workspace needs on the agent, which accepts exactly these (services/agent/sync-args.ts):
 * the tree, symlinks, mtimes (they keep rsync's size+mtime quick check exact, so no --checksum
 * reading every file) and the executable bit. Not --perms, --owner, --group or --devices: the
 * laptop's modes, ids and devices mean nothing there. Delta transfer stays on (no --whole-file):
 * the agent is usually across a WAN, and only changed files pay for it. No --compress: it costs
 * CPU at both ends that a fast link does not repay (worth revisiting for slow links).
 */
const RSYNC_FLAGS = ['--recursive', '--links', '--times', '--executability', '--delete'];

/** The node script rsync runs as its remote shell, as compiled to dist/. */
const RSH_MAIN = path.join(repoRoot(), 'dist', 'services', 'proxy', 'rsh-main.js');

/** rsync's exit code when its remote shell failed: ours exits so when it cannot reach the agent. */
const REMOTE_SHELL_FAILED = 255;

/** The agent could not be reached at all (it may have moved): worth asking for the session again. */
export class AgentUnreachableError extends Error {
  override name = 'AgentUnreachableError';
}

/** Last bytes of rsync's stderr kept for an error message. */
const STDERR_TAIL_BYTES = 4 * 1024;

export async function syncWorkspace(options: SyncWorkspaceOptions): Promise<{ syncId: string; ms: number }> {
  const { agentAddress, sessionId, tls } = options;
  const syncId = options.syncId ?? randomUUID();
  const workspace = path.resolve(options.workspace);
  if (!fs.existsSync(RSH_MAIN)) throw new Error(`${RSH_MAIN} is missing: build with 'npx tsc -p tsconfig.json'`);
  const rsh = [process.execPath, RSH_MAIN].map(rsyncQuote).join(' ');
  const args = [...RSYNC_FLAGS, ...workspaceFilters(workspace), '-e', rsh, `${workspace}/`, 'agent:.'];
  const env = { ...withoutRsyncVariables(process.env), ...rshEnv({ agentAddress, sessionId, syncId, tls }) };

  const started = performance.now();
  const { failure, stderr, code } = await run('rsync', args, env);
  if (failure !== null) {
    const message = `rsync of ${workspace} to the agent of session ${sessionId} at ${agentAddress} failed (${failure}): ${stderr}`;
    throw code === REMOTE_SHELL_FAILED ? new AgentUnreachableError(message) : new Error(message);
  }
  return { syncId, ms: Math.round(performance.now() - started) };
}

/** rsync splits -e itself: a single-quoted word is literal, and '' inside it is one quote. */
function rsyncQuote(word: string): string {
  return `'${word.replace(/'/g, "''")}'`;
}

/** rsync takes options from RSYNC_* variables (e.g. RSYNC_PROTECT_ARGS), which the agent would refuse. */
function withoutRsyncVariables(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !name.startsWith('RSYNC_')));
}

/** Runs `command`; resolves to why it failed (null if it exited 0) and the tail of its stderr. */
function run(command: string, args: string[], env: NodeJS.ProcessEnv) {
  return new Promise<{ failure: string | null; stderr: string; code: number | null }>((resolve) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = Buffer.alloc(0);
    child.stderr.on('data', (chunk: Buffer) => (stderr = Buffer.concat([stderr, chunk]).subarray(-STDERR_TAIL_BYTES)));
    child.on('error', (err) => resolve({ failure: `cannot run ${command}: ${err.message}`, stderr: '', code: null }));
    child.on('close', (code, signal) =>
      resolve({
        failure: code === 0 ? null : signal ? `killed by ${signal}` : `exit ${code}`,
        stderr: stderr.toString('utf8').trim(),
        code,
      }),
    );
  });
}
