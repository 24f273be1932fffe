/**
 * The session's real Bazel server, driven by the agent: started (or found again) on the session
 * volume's output base, and running the developer's commands with their laptop's paths mapped to the
 * agent's.
 */
import { spawn } from 'node:child_process';
import { appendFile, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { protos } from '../../lib/grpc/protos';
import type { CommandServerClient } from '../../gen/proto/command_server/CommandServer';
import type { RunRequest__Output } from '../../gen/proto/command_server/RunRequest';
import type { RunResponse__Output } from '../../gen/proto/command_server/RunResponse';

export interface BazelServerOptions {
  /** The agent's copy of the workspace: the server's --workspace_directory. */
  workspaceDir: string;
  /** On the session volume, so caches survive agent restarts and suspend/resume. */
  outputBase: string;
  bazel?: string;
  maxIdleSecs?: number;
  /** Where the output of the real client (which starts and stops the server) is appended. */
  logFile?: string;
}

/** Where the request came from: paths on the developer's machine. */
export interface ClientPaths {
  clientWorkspace: string;
  clientOutputBase?: string;
}

/** What those paths become on the agent, and the agent's environment. */
export interface AgentPaths {
  workspaceDir: string;
  outputBase: string;
  env: NodeJS.ProcessEnv;
}

/**
 * Variables that name places on the machine that runs the command, taken from the agent instead of
 * the laptop. Bazel 4 passes the client's PATH into every action's environment (and so into action
 * keys), and repository rules and tests read all three; the laptop's values are meaningless here.
 * Everything else the client sends is the developer's configuration and passes through.
 */
const MACHINE_ENV = ['PATH', 'HOME', 'TMPDIR'];

const RPC_TIMEOUT_MS = 5_000;
/** How long an aborted command may take to end after Cancel before we stop waiting for it. */
const CANCEL_GRACE_MS = 10_000;
const EXIT_TIMEOUT_MS = 30_000;

/** The server accepts bytes that Bazel treats as Latin-1; this keeps every other byte untouched. */
const latin1 = (text: string) => Buffer.from(text, 'utf8').toString('latin1');

/**
 * Rewrites paths under `from` (whole paths or their prefixes, at the start of an argument or after
 * `=` or `:`, as in `--client_cwd=`, `--rc_source=`, `--default_override=…=--flag=` and PATH-like
 * lists) to `to`. Longer prefixes win, and each occurrence is rewritten once.
 */
function pathMapper(pairs: [from: string | undefined, to: string][]): (text: string) => string {
  const map = new Map(pairs.flatMap(([from, to]) => (from ? [[latin1(path.resolve(from)), latin1(path.resolve(to))] as const] : [])));
  const alternatives = [...map.keys()].sort((a, b) => b.length - a.length).map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  if (alternatives.length === 0) return (text) => text;
  const pattern = new RegExp(`(?<=^|[=:])(?:${alternatives.join('|')})(?=$|[/:])`, 'g');
  return (text) => text.replace(pattern, (match) => map.get(match)!);
}

/**
 * The client's request as the agent's server must see it: laptop paths mapped to the agent's, and
 * MACHINE_ENV replaced by the agent's values (placed right after the command name, so they stay
 * options whatever follows). Output is not mapped back: the developer sees the agent's paths.
 */
export function mapRunRequest(request: RunRequest__Output, client: ClientPaths, agent: AgentPaths): RunRequest__Output {
  const mapPath = pathMapper([
    [client.clientWorkspace, agent.workspaceDir],
    [client.clientOutputBase, agent.outputBase],
  ]);
  const map = (bytes: Buffer) => Buffer.from(mapPath(bytes.toString('latin1')), 'latin1');
  const isMachineEnv = (arg: Buffer) => MACHINE_ENV.some((name) => arg.toString('latin1').startsWith(`--client_env=${name}=`));
  const agentEnv = MACHINE_ENV.flatMap((name) => (agent.env[name] === undefined ? [] : [Buffer.from(`--client_env=${name}=${agent.env[name]}`)]));
  const [command, ...options] = request.arg.filter((arg) => !isMachineEnv(arg)).map(map);
  return {
    ...request,
    arg: command === undefined ? [] : [command, ...agentEnv, ...options],
    startupOptions: request.startupOptions.map(({ option, source }) => ({ option: map(option), source: map(source) })),
  };
}

/**
 * Startup options that shape the server process itself, which the agent's server must be started
 * with: a server started with others is restarted (by the real client, which compares them with the
 * running server's). The rest stay on the laptop: rc-file and client options are already applied
 * to the request, and places (output base, install base, javabase) are the agent's own.
 */
const SERVER_STARTUP_OPTIONS = new Set([
  'host_jvm_args',
  'host_jvm_profile',
  'host_jvm_debug',
  'batch_cpu_scheduling',
  'io_nice_level',
  'shutdown_on_low_sys_mem',
  'idle_server_tasks',
  'write_command_log',
  'expand_configs_in_place',
  'experimental_oom_more_eagerly_threshold',
  'unlimit_coredumps',
  'watchfs',
  'fatal_event_bus_exceptions',
  'incompatible_enable_execution_transition',
]);

/** The request's startup options (as the client gives them, in order) that the server must have. */
export function serverStartupArgs(options: RunRequest__Output['startupOptions']): string[] {
  return options
    .map(({ option }) => option.toString('latin1'))
    .filter((option) => {
      const name = /^--(?:no)?([a-z_]+)(?:=|$)/.exec(option)?.[1];
      return name !== undefined && (SERVER_STARTUP_OPTIONS.has(name) || (name.startsWith('no') && SERVER_STARTUP_OPTIONS.has(name.slice(2))));
    });
}

interface Connection {
  client: CommandServerClient;
  pid: number;
  requestCookie: string;
  responseCookie: string;
}

function sameArgs(a: string[], b: string[] | undefined): boolean {
  return b !== undefined && a.length === b.length && a.every((arg, i) => arg === b[i]);
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function waitForExit(pid: number, what: string): Promise<void> {
  const deadline = Date.now() + EXIT_TIMEOUT_MS;
  while (isRunning(pid)) {
    if (Date.now() > deadline) throw new Error(`${what} (pid ${pid}) still runs ${EXIT_TIMEOUT_MS} ms after it was asked to stop`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A unary call whose response must carry the server's response cookie, proving who answered. */
function checkedCall(
  conn: Connection,
  what: string,
  invoke: (options: grpc.CallOptions, done: (err: grpc.ServiceError | null, response?: { cookie: string }) => void) => void,
): Promise<void> {
  return new Promise((resolve, reject) =>
    invoke({ deadline: Date.now() + RPC_TIMEOUT_MS }, (err, response) => {
      if (err) reject(new Error(`${what} to Bazel server (pid ${conn.pid}) failed: ${err.message}`));
      else if (response?.cookie !== conn.responseCookie) reject(new Error(`${what}: Bazel server (pid ${conn.pid}) answered with the wrong cookie`));
      else resolve();
    }),
  );
}

export class BazelServer {
  private readonly options: BazelServerOptions & { bazel: string };
  private conn: Connection | undefined;
  /** The startup options the server was last started or confirmed with; unknown after an agent restart. */
  private startupArgs: string[] | undefined;
  /** Starts, attaches and stops happen one at a time. */
  private lifecycle: Promise<unknown> = Promise.resolve();

  constructor(options: BazelServerOptions) {
    this.options = { bazel: 'bazel', ...options, workspaceDir: path.resolve(options.workspaceDir), outputBase: path.resolve(options.outputBase) };
  }

  /** Attaches to the running server, or starts one with the last command's startup options (or none). */
  async ensureStarted(): Promise<void> {
    await this.connect(true, this.startupArgs);
  }

  async run(request: RunRequest__Output, paths: ClientPaths, onResponse: (response: RunResponse__Output) => void, signal: AbortSignal): Promise<void> {
    const conn = await this.connect(true, serverStartupArgs(request.startupOptions));
    signal.throwIfAborted();
    const { workspaceDir, outputBase } = this.options;
    const mapped = mapRunRequest(request, paths, { workspaceDir, outputBase, env: process.env });
    const call = conn.client.Run({ ...mapped, cookie: conn.requestCookie });
    let commandId = '';
    let terminationExpected = false;
    let graceTimer: NodeJS.Timeout | undefined;
    let stopReason: string | undefined;
    const stop = (reason: string) => {
      stopReason ??= reason;
      call.cancel();
    };
    const sendCancel = () => this.cancelOn(conn, commandId).catch((err: Error) => stop(err.message));
    // The server keeps running a command whose stream drops (bazelbuild/bazel#30954): cancel it
    // explicitly, then wait for the server to end the stream, so that its lock is free when we return.
    const onAbort = () => {
      if (commandId) void sendCancel();
      graceTimer = setTimeout(() => stop(`did not end within ${CANCEL_GRACE_MS} ms of its Cancel`), CANCEL_GRACE_MS);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await new Promise<void>((resolve, reject) => {
        call.on('data', (response: RunResponse__Output) => {
          if (!commandId && response.commandId) {
            commandId = response.commandId;
            if (signal.aborted) void sendCancel();
          }
          terminationExpected ||= response.terminationExpected;
          onResponse({ ...response, cookie: '' });
        });
        call.on('end', resolve);
        call.on('error', (err) => reject(new Error(`Bazel command ${commandId || '(no id yet)'} on server pid ${conn.pid} ${stopReason ?? `failed: ${err.message}`}`)));
      });
    } finally {
      signal.removeEventListener('abort', onAbort);
      clearTimeout(graceTimer);
      // After `shutdown` or `clean --expunge` the server exits: the next command needs a new one.
      if (terminationExpected) await this.serialized(() => this.forget(conn));
    }
  }

  async cancel(commandId: string): Promise<void> {
    const conn = await this.connect(false);
    if (conn) await this.cancelOn(conn, commandId);
  }

  async ping(): Promise<void> {
    if (!this.conn) throw new Error(`no Bazel server attached for ${this.options.outputBase}`);
    await this.pingOn(this.conn);
  }

  /** Stops the server through the real client, which also copes with a hung or half-started one. */
  async shutdown(): Promise<void> {
    await this.serialized(async () => {
      const pid = await this.readServerFiles().then((files) => files?.pid);
      this.close();
      if (pid === undefined || !isRunning(pid)) return; // no server: nothing to stop (and no client run)
      await this.runClient(['shutdown']);
      await waitForExit(pid, 'Bazel server');
    });
  }

  /** Drops our connection; the server keeps running for the next agent. */
  close(): void {
    this.conn?.client.close();
    this.conn = undefined;
  }

  private serialized<T>(task: () => Promise<T>): Promise<T> {
    const result = this.lifecycle.then(task);
    this.lifecycle = result.catch(() => undefined);
    return result;
  }

  /**
   * Our connection if the server still answers, else a live server's, else (if `start`) a new one.
   * With `startupArgs` that the server may not have been started with, the real client starts it
   * (or restarts it, if they differ from the running server's) before we attach; without them,
   * whatever server runs will do.
   */
  private connect(start: true, startupArgs: string[] | undefined): Promise<Connection>;
  private connect(start: false): Promise<Connection | undefined>;
  private connect(start: boolean, startupArgs?: string[]): Promise<Connection | undefined> {
    return this.serialized(async () => {
      const confirmed = startupArgs === undefined || sameArgs(startupArgs, this.startupArgs);
      if (this.conn && confirmed && (await this.pingOn(this.conn).then(() => true, () => false))) return this.conn;
      this.close();
      if (confirmed) this.conn = await this.attach();
      if (this.conn || !start) return this.conn;
      await this.runClient([...(startupArgs ?? []), 'info', 'release']);
      this.startupArgs = startupArgs ?? [];
      this.conn = await this.attach();
      if (!this.conn) throw new Error(`the Bazel server that \`bazel info\` started in ${this.options.outputBase} does not answer`);
      return this.conn;
    });
  }

  /**
   * The server in <outputBase>/server/ if it runs, serves our workspace and answers a Ping. We read
   * command_port and the cookie files, not server_info.rawproto: they are what the 4.2.3 client
   * itself reads (checked with strace), and they are plain text.
   */
  private async attach(): Promise<Connection | undefined> {
    const files = await this.readServerFiles();
    if (!files || !isRunning(files.pid) || !files.cmdline.includes(latin1(`--workspace_directory=${this.options.workspaceDir}`))) return undefined;
    // Bazel serves plain gRPC on loopback only; anything else in the file is not a Bazel server.
    if (!/^(127\.0\.0\.1|\[::1\]):\d+$/.test(files.address)) throw new Error(`Bazel server address ${files.address} in ${this.serverDir} is not loopback`);
    const { CommandServer } = protos().bazel.command_server;
    const conn: Connection = { ...files, client: new CommandServer(files.address, grpc.credentials.createInsecure()) };
    return this.pingOn(conn).then(
      () => conn,
      () => void conn.client.close(),
    );
  }

  private get serverDir(): string {
    return path.join(this.options.outputBase, 'server');
  }

  private async readServerFiles() {
    const read = (name: string) => readFile(path.join(this.serverDir, name), 'latin1');
    try {
      const [address, requestCookie, responseCookie, pid, cmdline] = await Promise.all(
        ['command_port', 'request_cookie', 'response_cookie', 'server.pid.txt', 'cmdline'].map(read),
      );
      return { address: address.trim(), requestCookie: requestCookie.trim(), responseCookie: responseCookie.trim(), pid: Number(pid), cmdline: cmdline.split('\0') };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  private pingOn(conn: Connection): Promise<void> {
    return checkedCall(conn, 'Ping', (options, done) => conn.client.Ping({ cookie: conn.requestCookie }, options, done));
  }

  private cancelOn(conn: Connection, commandId: string): Promise<void> {
    return checkedCall(conn, `Cancel ${commandId}`, (options, done) => conn.client.Cancel({ cookie: conn.requestCookie, commandId }, options, done));
  }

  /** Waits for a server that announced its exit, so that nobody attaches to it while it goes. */
  private async forget(conn: Connection): Promise<void> {
    if (this.conn === conn) this.close();
    await waitForExit(conn.pid, 'Bazel server');
  }

  /** Runs the real Bazel client against our output base, as a developer would on the agent. */
  private runClient(args: string[]): Promise<void> {
    const { bazel, workspaceDir, outputBase, maxIdleSecs, logFile } = this.options;
    const argv = [`--output_base=${outputBase}`, ...(maxIdleSecs === undefined ? [] : [`--max_idle_secs=${maxIdleSecs}`]), ...args];
    const what = `\`${bazel} ${argv.join(' ')}\` in ${workspaceDir}`;
    return new Promise((resolve, reject) => {
      const child = spawn(bazel, argv, { cwd: workspaceDir, stdio: ['ignore', 'pipe', 'pipe'] });
      const output: Buffer[] = [];
      child.stdout.on('data', (chunk: Buffer) => output.push(chunk));
      child.stderr.on('data', (chunk: Buffer) => output.push(chunk));
      child.on('error', (err) => reject(new Error(`${what} could not start: ${err.message}`)));
      child.on('close', (code, signal) => {
        const text = Buffer.concat(output).toString();
        const logged = logFile ? appendFile(logFile, `${new Date().toISOString()} ${what}\n${text}`) : Promise.resolve();
        logged.then(() => {
          if (code === 0) resolve();
          else reject(new Error(`${what} exited with ${signal ?? code}: ${text.split('\n').slice(-15).join('\n')}`));
        }, reject);
      });
    });
  }
}
