/**
 * Runs the local rsync with its remote end on the session's agent: rsync starts its "remote shell"
 * as it would ssh, and the shell hands rsync's stdio to this process over an inherited socket, which
 * relays it on a Sync stream of the proxy's existing mTLS connection to the agent. The remote shell
 * is two `cat`s, not a program of ours: a sync pays no process start-up, TLS handshake or key file.
 */
import { spawn } from 'node:child_process';
import type { Socket } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import type { AgentClient } from '../../gen/proto/rbs/v1/Agent';
import type { SyncExit__Output } from '../../gen/proto/rbs/v1/SyncExit';
import type { SyncFrame, SyncFrame__Output } from '../../gen/proto/rbs/v1/SyncFrame';
import type { SyncStart } from '../../gen/proto/rbs/v1/SyncStart';

/** The fd on which rsync's remote shell (and only it) reaches this process. */
const RELAY_FD = 3;

/**
 * rsync runs `<this> <host> rsync --server …`. The shell first names that command line (a count,
 * then the words, each NUL-terminated), then leaves two `cat`s copying rsync's requests to the relay
 * and the relay's answers to rsync, and exits at once: rsync polls for its remote shell's exit every
 * 20 ms at the end of a transfer, so a shell still running then would add that much to every sync.
 * A non-interactive shell gives background jobs /dev/null as stdin, hence fd 4.
 */
const REMOTE_SHELL_SCRIPT = [
  `printf '%s\\0' "$#" "$@" >&${RELAY_FD} || exit 255`,
  `exec 4<&0`,
  `cat <&4 >&${RELAY_FD} 4<&- &`,
  `cat <&${RELAY_FD} 4<&- &`,
].join('\n');

/** The remote shell's words, for rsync's -e (a wrapper that rewrites the command may exec them). */
export const REMOTE_SHELL = ['/bin/sh', '-c', REMOTE_SHELL_SCRIPT, 'rbs-rsh'];

/** The agent could not be reached at all (it may have moved): worth asking for the session again. */
export class AgentUnreachableError extends Error {
  override name = 'AgentUnreachableError';
}

/** Another sync is still writing the agent's copy (an interrupted one, say, still being stopped): try again shortly. */
export class AgentBusyError extends Error {
  override name = 'AgentBusyError';
}

/** The agent's copy is not the base an incremental sync builds on: sync everything instead. */
export class StaleBaseError extends Error {
  override name = 'StaleBaseError';
}

/** Last bytes of rsync's stderr kept for an error message. */
const STDERR_TAIL_BYTES = 4 * 1024;

/**
 * How long the agent's end may outlive a failed local rsync before it is cancelled: long enough for
 * its own status (the reason, often), short enough that nothing waits on a peer that waits on us.
 */
const REMOTE_END_GRACE_MS = 2_000;

/** The longest remote command line accepted from the shell: rsync's are a few hundred bytes. */
const MAX_COMMAND_BYTES = 64 * 1024;

export interface RsyncToAgentOptions {
  agent: AgentClient;
  syncId: string;
  /** The sync an incremental sync builds on (SyncStart.base_sync_id); none for a full sync. */
  baseSyncId?: string;
  /** rsync's arguments, without -e: the remote shell is added here. */
  args: string[];
  cwd: string;
  /** What is being synced where, for error messages. */
  describe: string;
  /** What rsync reads on its stdin (e.g. filter rules for --exclude-from=-). */
  stdin?: Buffer;
  /** The -e value, if not REMOTE_SHELL itself (tests put a hostile rewriter in front of it). */
  remoteShell?: string[];
  /** The agent's stream: Sync (default) for a push into the workspace, Fetch for a pull from the output base. */
  stream?: 'sync' | 'fetch';
  /** Stops rsync (and with it the agent's end): the command was interrupted. */
  signal?: AbortSignal;
}

/**
 * Runs rsync to the agent; resolves with the tail of rsync's stdout (its --stats, say) once both
 * ends have finished, rejects with the reason if either failed.
 */
export function rsyncToAgent(options: RsyncToAgentOptions): Promise<string> {
  const { agent, syncId, describe } = options;
  const rsh = (options.remoteShell ?? REMOTE_SHELL).map(rsyncQuote).join(' ');
  // --blocking-io: rsync otherwise hands the shell a non-blocking stdout, and its `cat` fails with
  // EAGAIN as soon as rsync reads slower than the agent sends (a large fetch). The server never sees it.
  const rsync = spawn('rsync', ['--blocking-io', '-e', rsh, ...options.args], {
    cwd: options.cwd,
    env: withoutRsyncVariables(process.env),
    stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe', 'pipe'],
    signal: options.signal,
  });
  rsync.stdin?.on('error', () => undefined); // EPIPE if rsync dies early; its status says why
  rsync.stdin?.end(options.stdin);
  const relaySocket = rsync.stdio[RELAY_FD] as Socket;
  let stderr = Buffer.alloc(0);
  let stdout = Buffer.alloc(0);
  rsync.stderr!.on('data', (chunk: Buffer) => (stderr = Buffer.concat([stderr, chunk]).subarray(-STDERR_TAIL_BYTES)));
  rsync.stdout!.on('data', (chunk: Buffer) => (stdout = Buffer.concat([stdout, chunk]).subarray(-STDERR_TAIL_BYTES)));
  relaySocket.on('error', () => undefined); // EPIPE after the shell exits; rsync's status says why

  const remote = relay(relaySocket, streamOf(agent, options.stream ?? 'sync'), { syncId, baseSyncId: options.baseSyncId ?? '' });
  const local = new Promise<string | null>((resolve) => {
    rsync.on('error', (err) => resolve(options.signal?.aborted ? 'interrupted' : `cannot run rsync: ${err.message}`));
    rsync.on('close', (code, signal) => resolve(code === 0 ? null : signal ? `rsync killed by ${signal}` : `rsync exit ${code}`));
  });
  // The shell's background cats may hold the relay open after rsync is gone, and the agent's rsync
  // would wait for a peer that is no more: its end is cancelled.
  const onAbort = () => remote.abort('interrupted');
  options.signal?.addEventListener('abort', onAbort, { once: true });
  void local.then((failure) => {
    if (failure) setTimeout(() => remote.abort(`the local rsync ended (${failure}) and the agent's did not`), REMOTE_END_GRACE_MS).unref();
  });
  return Promise.all([local, remote.exit]).then(([localFailure, remoteOutcome]) => {
    options.signal?.removeEventListener('abort', onAbort);
    const tail = stderr.toString('utf8').trim();
    if (remoteOutcome.kind !== 'exited') {
      if (remoteOutcome.kind === 'unreachable') throw new AgentUnreachableError(`${describe}: ${remoteOutcome.why}`);
      if (remoteOutcome.kind === 'stale') throw new StaleBaseError(`${describe}: ${remoteOutcome.why}`);
      if (remoteOutcome.kind === 'busy') throw new AgentBusyError(`${describe}: ${remoteOutcome.why}`);
      throw new Error(`${describe}: ${remoteOutcome.why}${tail ? `; rsync: ${tail}` : ''}`);
    }
    const { code, message } = remoteOutcome.exit;
    if (code !== 0) throw new Error(`${describe}: the agent's rsync exited ${code}: ${message || tail}`);
    if (localFailure) throw new Error(`${describe}: ${localFailure}: ${tail}`);
    return stdout.toString('utf8');
  });
}

type Failure = 'unreachable' | 'stale' | 'busy' | 'failed';
type RemoteOutcome = { kind: 'exited'; exit: SyncExit__Output } | { kind: Failure; why: string };

/** Reads the shell's command line, then carries its bytes both ways over one Sync stream. */
interface OpenStream {
  name: string;
  open(): grpc.ClientDuplexStream<SyncFrame, SyncFrame__Output>;
}

function streamOf(agent: AgentClient, stream: 'sync' | 'fetch'): OpenStream {
  return stream === 'fetch' ? { name: 'Fetch', open: () => agent.fetch() } : { name: 'Sync', open: () => agent.sync() };
}

function relay(socket: Socket, open: OpenStream, start: Omit<SyncStart, 'serverArgs'>): { exit: Promise<RemoteOutcome>; abort(why: string): void } {
  let header = Buffer.alloc(0);
  let call: grpc.ClientDuplexStream<SyncFrame, SyncFrame__Output> | undefined;
  let settle!: (outcome: RemoteOutcome) => void;
  const exit = new Promise<RemoteOutcome>((resolve) => (settle = resolve));
  const fail = (outcome: RemoteOutcome) => {
    settle(outcome);
    call?.cancel();
    socket.destroy();
  };

  const onHeader = (chunk: Buffer) => {
    header = Buffer.concat([header, chunk]);
    const parsed = parseCommand(header);
    if (parsed === 'incomplete') {
      if (header.length > MAX_COMMAND_BYTES) fail({ kind: 'failed', why: 'the remote shell sent no complete command line' });
      return;
    }
    socket.off('data', onHeader);
    if (parsed === 'malformed') return fail({ kind: 'failed', why: 'the remote shell sent a malformed command line' });
    const [_host, command, ...serverArgs] = parsed.words;
    if (command !== 'rsync') return fail({ kind: 'failed', why: `rsync asked its remote shell to run ${JSON.stringify(command)}` });
    try {
      call = startCall(open, socket, { ...start, serverArgs }, settle);
    } catch (err) {
      // A client closed under us (the proxy is going away) throws here, in an event handler.
      return fail({ kind: 'unreachable', why: `cannot open the agent's ${open.name}: ${(err as Error).message}` });
    }
    if (parsed.rest.length > 0) call.write({ data: parsed.rest });
  };
  socket.on('data', onHeader);
  // The shell exited before naming a command (rsync died): nothing was started remotely.
  socket.on('close', () => call ?? settle({ kind: 'failed', why: 'the remote shell exited before it started the sync' }));
  return { exit, abort: (why) => fail({ kind: 'failed', why }) };
}

function startCall(
  stream: OpenStream,
  socket: Socket,
  start: SyncStart,
  settle: (outcome: RemoteOutcome) => void,
): grpc.ClientDuplexStream<SyncFrame, SyncFrame__Output> {
  const call = stream.open();
  let exit: SyncExit__Output | undefined;
  call.write({ start });
  socket.on('data', (chunk: Buffer) => {
    if (call.write({ data: chunk })) return;
    socket.pause();
    call.once('drain', () => socket.resume());
  });
  socket.on('end', () => call.end());
  socket.on('close', () => exit ?? call.cancel()); // rsync is gone: stop the remote end too
  call.on('data', (frame: SyncFrame__Output) => {
    if (frame.frame === 'exit') exit = frame.exit!;
    else if (frame.frame === 'data' && !socket.write(frame.data!)) {
      call.pause();
      socket.once('drain', () => call.resume());
    }
  });
  // grpc-js emits a failed status as 'error' at once, ahead of 'end': 'end' means the status was OK.
  call.on('error', (err: grpc.ServiceError) => {
    const kinds: Partial<Record<grpc.status, Failure>> = {
      [grpc.status.UNAVAILABLE]: 'unreachable',
      [grpc.status.FAILED_PRECONDITION]: 'stale',
      [grpc.status.ABORTED]: 'busy',
    };
    const kind = kinds[err.code] ?? 'failed';
    settle({ kind, why: `the agent's ${stream.name} failed: ${grpc.status[err.code]}: ${err.details || err.message}` });
    socket.destroy();
  });
  call.on('end', () => {
    settle(exit ? { kind: 'exited', exit } : { kind: 'failed', why: `the agent's ${stream.name} ended without rsync's exit status` });
    socket.end();
  });
  return call;
}

/** `<count>\0<word>\0…`: the words and what follows them, or why there are none yet. */
function parseCommand(buffer: Buffer): { words: string[]; rest: Buffer } | 'incomplete' | 'malformed' {
  const fields: string[] = [];
  let start = 0;
  for (;;) {
    const end = buffer.indexOf(0, start);
    if (end < 0) return 'incomplete';
    fields.push(buffer.subarray(start, end).toString('utf8'));
    start = end + 1;
    const count = Number(fields[0]);
    if (!Number.isSafeInteger(count) || count < 2) return 'malformed';
    if (fields.length === count + 1) return { words: fields.slice(1), rest: buffer.subarray(start) };
  }
}

/** rsync splits -e itself: a single-quoted word is literal, and '' inside it is one quote. */
function rsyncQuote(word: string): string {
  return `'${word.replace(/'/g, "''")}'`;
}

/** rsync takes options from RSYNC_* variables (e.g. RSYNC_PROTECT_ARGS), which the agent would refuse. */
function withoutRsyncVariables(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !name.startsWith('RSYNC_')));
}
