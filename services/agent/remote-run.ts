/**
 * `bazel run` on the agent: the exec request the agent's own Bazel server answered with, run here
 * in the agent's copy under the agent's identity, its stdio, signals and exit relayed over
 * RunRemotely. Only a request the agent kept (by its single-use id) can run, for a minute at most.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { constants } from 'node:os';
import * as grpc from '@grpc/grpc-js';
import type { ExecRequest__Output } from '../../gen/proto/command_server/ExecRequest';
import type { RemoteRunFrame, RemoteRunFrame__Output } from '../../gen/proto/rbs/v1/RemoteRunFrame';

export type RemoteRunCall = grpc.ServerDuplexStream<RemoteRunFrame__Output, RemoteRunFrame>;

const KEPT_MS = 60_000;
/** Signals the laptop's relay may pass on; anything else is refused. */
const RELAYED_SIGNALS = new Set<NodeJS.Signals>(['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT']);

/** Exec requests of finished `bazel run` commands, waiting for their RunRemotely. */
export class KeptRuns {
  private readonly runs = new Map<string, { exec: ExecRequest__Output; timer: NodeJS.Timeout }>();

  keep(exec: ExecRequest__Output): string {
    const id = randomUUID();
    const timer = setTimeout(() => this.runs.delete(id), KEPT_MS);
    timer.unref();
    this.runs.set(id, { exec, timer });
    return id;
  }

  take(id: string): ExecRequest__Output | undefined {
    const kept = this.runs.get(id);
    if (!kept) return undefined;
    this.runs.delete(id);
    clearTimeout(kept.timer);
    return kept.exec;
  }
}

const text = (bytes: Buffer) => bytes.toString('latin1');

/** The program's environment: the agent's, less what Bazel clears, plus what Bazel sets. */
function environmentOf(exec: ExecRequest__Output): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of exec.environmentVariableToClear) delete env[text(name)];
  for (const { name, value } of exec.environmentVariable) env[text(name)] = text(value);
  return env;
}

/** Serves one RunRemotely call for an already authorized peer. */
export function serveRemoteRun(call: RemoteRunCall, kept: KeptRuns): void {
  let child: ReturnType<typeof spawn> | undefined;
  let ended = false;
  const finish = (code: number, message = '', signal = '') => {
    if (ended) return;
    ended = true;
    call.write({ exit: { code, message, signal } });
    call.end();
  };
  /** The program and everything it started: it runs in a process group of its own. */
  const signalGroup = (signal: NodeJS.Signals) => {
    if (child?.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      // Already gone.
    }
  };
  // The laptop's relay going away (its client killed, the network dropped) stops the program.
  call.on('cancelled', () => signalGroup('SIGKILL'));
  call.on('error', () => signalGroup('SIGKILL'));

  call.on('data', (frame: RemoteRunFrame__Output) => {
    if (frame.frame === 'start' && child === undefined) {
      const exec = kept.take(frame.start ?? '');
      if (!exec) return finish(2, `no \`bazel run\` waits under id ${JSON.stringify(frame.start)} (each runs once, within ${KEPT_MS / 1000} s)`);
      const [program, ...args] = exec.argv.map(text);
      child = spawn(program!, args, { cwd: text(exec.workingDirectory), env: environmentOf(exec), detached: true, stdio: 'pipe' });
      // A slow reader on the laptop holds the program back, rather than this agent's memory growing.
      const pump = (stream: NodeJS.ReadableStream, frame: (chunk: Buffer) => RemoteRunFrame) =>
        stream.on('data', (chunk: Buffer) => {
          if (call.write(frame(chunk))) return;
          stream.pause();
          call.once('drain', () => stream.resume());
        });
      pump(child.stdout!, (stdout) => ({ stdout }));
      pump(child.stderr!, (stderr) => ({ stderr }));
      child.stdin!.on('error', () => undefined); // a program that does not read its stdin
      child.on('error', (err) => finish(127, `cannot run ${program}: ${err.message}`));
      child.on('close', (code, signal) => finish(code ?? 128 + (signal ? constants.signals[signal] : 0), '', signal ?? ''));
    } else if (child === undefined) {
      finish(2, 'RunRemotely must start with the run id');
    } else if (frame.frame === 'stdin') {
      child.stdin!.write(frame.stdin);
    } else if (frame.frame === 'stdinEof') {
      child.stdin!.end();
    } else if (frame.frame === 'signal') {
      const signal = frame.signal as NodeJS.Signals;
      if (RELAYED_SIGNALS.has(signal)) signalGroup(signal);
    }
  });
  call.on('end', () => {
    if (child === undefined) finish(2, 'RunRemotely ended before it started');
  });
}
