/**
 * The session's real Bazel server, driven by the agent: started on the session volume's output
 * base and pinned, and running the developer's commands with their laptop's paths mapped to the
 * agent's.
 */
import { spawn } from 'node:child_process';
import { access, appendFile } from 'node:fs/promises';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { protos } from '../../lib/grpc/protos';
import type { CommandServerClient } from '../../gen/proto/command_server/CommandServer';
import type { ExecRequest__Output } from '../../gen/proto/command_server/ExecRequest';
import type { RunRequest__Output } from '../../gen/proto/command_server/RunRequest';
import type { RunResponse__Output } from '../../gen/proto/command_server/RunResponse';
import { bazelServersOf, exited, isStillRunning, killNow, stopProcess } from './bazel-process';
import { type ClientPaths, mapRunRequest, serverStartupArgs } from './run-request';
import { type ServerPin, clearOutputBase, pinStartedServer } from './server-pin';

export interface BazelServerOptions {
  /** The agent's copy of the workspace: the server's --workspace_directory. */
  workspaceDir: string;
  /** On the session volume, so caches survive agent restarts and suspend/resume. */
  outputBase: string;
  bazel?: string;
  maxIdleSecs?: number;
  /** Where the output of the real client (which starts the server) is appended. */
  logFile?: string;
}

/** Any of these at its root makes a directory a Bazel workspace. */
const WORKSPACE_MARKERS = ['WORKSPACE', 'WORKSPACE.bazel', 'MODULE.bazel', 'REPO.bazel'];

const RPC_TIMEOUT_MS = 5_000;
/**
 * While a command runs, the server is pinged this often; after WATCH_FAILURES unanswered pings in
 * a row (15 s and more: frozen or wedged, not a GC pause) the command fails and the server is
 * stopped, so that its orphaned command holds no lock against the next one, which gets a new server.
 */
const WATCH_MS = 5_000;
const WATCH_FAILURES = 3;
/** How long an aborted command may take to end after Cancel before we stop waiting for it. */
const CANCEL_GRACE_MS = 10_000;
const EXIT_TIMEOUT_MS = 30_000;

interface PinnedServer extends ServerPin {
  client: CommandServerClient;
  /** The startup options it was started with. */
  startupArgs: string[];
}

function sameArgs(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((arg, i) => arg === b[i]);
}

/** A unary call whose response must carry the server's response cookie, proving who answered. */
function checkedCall(
  server: PinnedServer,
  what: string,
  invoke: (options: grpc.CallOptions, done: (err: grpc.ServiceError | null, response?: { cookie: string }) => void) => void,
): Promise<void> {
  return new Promise((resolve, reject) =>
    invoke({ deadline: Date.now() + RPC_TIMEOUT_MS }, (err, response) => {
      if (err) reject(new Error(`${what} to Bazel server (pid ${server.pid}) failed: ${err.message}`));
      else if (response?.cookie !== server.responseCookie) reject(new Error(`${what}: Bazel server (pid ${server.pid}) answered with the wrong cookie`));
      else resolve();
    }),
  );
}

/**
 * The agent talks only to the server it started itself and pinned (server-pin.ts): a server that
 * exits, or that the agent forgets, is never attached to again, whatever the files on the volume say.
 */
export class BazelServer {
  private readonly options: BazelServerOptions & { bazel: string };
  private pinned: PinnedServer | undefined;
  /** The startup options of the last start: a server started without a command gets them again. */
  private startupArgs: string[] = [];
  /** Starts and stops happen one at a time. */
  private lifecycle: Promise<unknown> = Promise.resolve();
  /** Set by killNow: no server is started or stopped any more. */
  private fenced = false;

  constructor(options: BazelServerOptions) {
    this.options = { bazel: 'bazel', ...options, workspaceDir: path.resolve(options.workspaceDir), outputBase: path.resolve(options.outputBase) };
  }

  /** Where our server keeps its outputs (absolute). */
  get outputBase(): string {
    return this.options.outputBase;
  }

  /** The workspace copy our server builds (absolute). */
  get workspaceDir(): string {
    return this.options.workspaceDir;
  }

  /** Makes sure our server runs: the pinned one if it answers, else a new one with the last startup options. */
  async ensureStarted(): Promise<void> {
    await this.connect(true);
  }

  /** Whether the copy is a Bazel workspace yet: a new volume's stays empty until the first sync. */
  async hasWorkspace(): Promise<boolean> {
    const found = await Promise.all(
      WORKSPACE_MARKERS.map((name) =>
        access(path.join(this.options.workspaceDir, name)).then(
          () => true,
          () => false,
        ),
      ),
    );
    return found.includes(true);
  }

  /**
   * Runs a command, relaying its responses. The exec_request that ends a `bazel run` is not relayed:
   * it is returned, and the final response it came in is dropped (its output is relayed).
   * `rewrite` has the last word on the mapped request (the outputs' build event file).
   */
  async run(
    request: RunRequest__Output,
    paths: ClientPaths,
    onResponse: (response: RunResponse__Output) => void,
    signal: AbortSignal,
    rewrite: (mapped: RunRequest__Output) => RunRequest__Output = (mapped) => mapped,
  ): Promise<ExecRequest__Output | undefined> {
    const server = await this.connect(true, serverStartupArgs(request.startupOptions));
    signal.throwIfAborted();
    const { workspaceDir, outputBase } = this.options;
    const mapped = rewrite(mapRunRequest(request, paths, { workspaceDir, outputBase, env: process.env }));
    const call = server.client.Run({ ...mapped, cookie: server.requestCookie });
    let commandId = '';
    let terminationExpected = false;
    let finished = false;
    let execRequest: ExecRequest__Output | undefined;
    let graceTimer: NodeJS.Timeout | undefined;
    let stopReason: string | undefined;
    const stop = (reason: string) => {
      stopReason ??= reason;
      call.cancel();
    };
    const sendCancel = () => this.cancelOn(server, commandId).catch((err: Error) => stop(err.message));
    // The server keeps running a command whose stream drops (bazelbuild/bazel#30954): cancel it
    // explicitly, then wait for the server to end the stream, so that its lock is free when we return.
    const onAbort = () => {
      if (commandId) void sendCancel();
      graceTimer = setTimeout(() => stop(`did not end within ${CANCEL_GRACE_MS} ms of its Cancel`), CANCEL_GRACE_MS);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    let unanswered = 0;
    const watch = setInterval(() => {
      this.pingOn(server).then(
        () => (unanswered = 0),
        () => {
          if (++unanswered < WATCH_FAILURES || stopReason) return;
          stop(`stopped answering: ${unanswered} pings in a row went unanswered for ${RPC_TIMEOUT_MS} ms each`);
          void this.serialized(() => this.stopPinned(server, false)).catch(() => undefined); // the next command starts anew
        },
      );
    }, WATCH_MS);
    try {
      await new Promise<void>((resolve, reject) => {
        call.on('data', (response: RunResponse__Output) => {
          if (!commandId && response.commandId) {
            commandId = response.commandId;
            if (signal.aborted) void sendCancel();
          }
          terminationExpected ||= response.terminationExpected;
          if (finished) return; // nothing follows a final response, least of all an exec_request
          finished = response.finished;
          if (!response.execRequest) return onResponse({ ...response, cookie: '' });
          execRequest = response.execRequest;
          if (response.standardOutput.length + response.standardError.length > 0) {
            onResponse({ ...response, cookie: '', execRequest: null, finished: false, exitCode: 0 });
          }
        });
        call.on('end', resolve);
        call.on('error', (err) =>
          reject(new Error(`Bazel command ${commandId || '(no id yet)'} on server pid ${server.pid} ${stopReason ?? `failed: ${err.message}`}`)),
        );
      });
      return execRequest;
    } finally {
      signal.removeEventListener('abort', onAbort);
      clearTimeout(graceTimer);
      clearInterval(watch);
      // After `shutdown` or `clean --expunge` the server exits: the next command needs a new one.
      if (terminationExpected) await this.serialized(() => this.forget(server));
    }
  }

  async cancel(commandId: string): Promise<void> {
    const server = await this.connect(false);
    if (server) await this.cancelOn(server, commandId);
  }

  /** Stops our server, and any other Bazel server /proc shows on our output base. */
  async shutdown(): Promise<void> {
    await this.serialized(async () => {
      if (this.pinned) await this.stopPinned(this.pinned);
      for (const stray of await bazelServersOf(this.options.outputBase)) await stopProcess(stray, `the Bazel server on ${this.options.outputBase}`);
    });
  }

  /**
   * SIGKILLs our server at once, and starts none from now on: the agent lost its volume to another,
   * and must not wait on anything (the volume may not answer).
   */
  killNow(): number | undefined {
    this.fenced = true;
    const pinned = this.pinned;
    return pinned && killNow(pinned) ? pinned.pid : undefined;
  }

  /** Forgets our server without stopping it: to this agent it is a stranger from now on. */
  close(): void {
    this.pinned?.client.close();
    this.pinned = undefined;
  }

  private serialized<T>(task: () => Promise<T>): Promise<T> {
    const result = this.lifecycle.then(() => {
      if (this.fenced) throw new Error('this agent lost its volume to another agent: it runs no Bazel server any more');
      return task();
    });
    this.lifecycle = result.catch(() => undefined);
    return result;
  }

  /**
   * Our server if it still runs and answers (and, given `startupArgs`, was started with them), else
   * (if `start`) a new one: the real client starts it, with `startupArgs` or the last ones, after
   * our old server is stopped, as a local client restarts a server whose startup options changed.
   */
  private connect(start: true, startupArgs?: string[]): Promise<PinnedServer>;
  private connect(start: false): Promise<PinnedServer | undefined>;
  private connect(start: boolean, startupArgs?: string[]): Promise<PinnedServer | undefined> {
    return this.serialized(async () => {
      const pinned = this.pinned;
      const fits = startupArgs === undefined || (pinned !== undefined && sameArgs(startupArgs, pinned.startupArgs));
      const answering = pinned !== undefined && (await this.answers(pinned));
      if (pinned && fits && answering) return pinned;
      if (!start) return undefined;
      if (pinned) await this.stopPinned(pinned, answering);
      const args = startupArgs ?? this.startupArgs;
      await clearOutputBase(this.options.outputBase);
      await this.runClient([...args, 'info', 'release']);
      this.startupArgs = args;
      const pin = await pinStartedServer(this.options.outputBase);
      if (this.fenced) killNow(pin); // started while the volume was lost
      const { CommandServer } = protos().bazel.command_server;
      const server: PinnedServer = { ...pin, startupArgs: args, client: new CommandServer(pin.address, grpc.credentials.createInsecure()) };
      await this.pingOn(server).catch((err: Error) => {
        server.client.close();
        throw err;
      });
      this.pinned = server;
      return server;
    });
  }

  /** Still the process we pinned (not a recycled pid), answering with our cookie. */
  private async answers(server: PinnedServer): Promise<boolean> {
    return (
      (await isStillRunning(server)) &&
      (await this.pingOn(server).then(
        () => true,
        () => false,
      ))
    );
  }

  /**
   * Asks our server to shut down, as `bazel shutdown` would, unless it stopped answering, and makes
   * sure it is gone. Once the pinned process is gone, its port is anybody's: nothing more is sent there.
   */
  private async stopPinned(server: PinnedServer, answering = true): Promise<void> {
    if (this.pinned === server) this.pinned = undefined;
    const asked =
      answering &&
      (await isStillRunning(server)) &&
      (await this.shutdownOn(server).then(
        () => true,
        () => false,
      ));
    server.client.close();
    if (!asked || !(await exited(server, EXIT_TIMEOUT_MS))) await stopProcess(server, `the Bazel server on ${this.options.outputBase}`);
  }

  /** Runs `shutdown` on our server and waits for the end of its answer. */
  private shutdownOn(server: PinnedServer): Promise<void> {
    const call = server.client.Run(
      {
        cookie: server.requestCookie,
        arg: ['shutdown', `--client_cwd=${this.options.workspaceDir}`].map((arg) => Buffer.from(arg)),
        blockForLock: true,
        clientDescription: `pid=${process.pid} (RBS agent)`,
      },
      { deadline: Date.now() + EXIT_TIMEOUT_MS },
    );
    return new Promise((resolve, reject) => {
      call.on('data', () => undefined);
      call.on('end', resolve);
      call.on('error', reject);
    });
  }

  private pingOn(server: PinnedServer): Promise<void> {
    return checkedCall(server, 'Ping', (options, done) => server.client.Ping({ cookie: server.requestCookie }, options, done));
  }

  private cancelOn(server: PinnedServer, commandId: string): Promise<void> {
    return checkedCall(server, `Cancel ${commandId}`, (options, done) => server.client.Cancel({ cookie: server.requestCookie, commandId }, options, done));
  }

  /** Waits for a server that announced its exit, so that no command reaches it while it goes. */
  private async forget(server: PinnedServer): Promise<void> {
    if (this.pinned === server) this.close();
    if (!(await exited(server, EXIT_TIMEOUT_MS))) {
      throw new Error(`the Bazel server (pid ${server.pid}) still runs ${EXIT_TIMEOUT_MS} ms after it said it would exit`);
    }
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
