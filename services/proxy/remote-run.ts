/**
 * A remote `bazel run`: the program runs on the agent (RunRemotely), and the Bazel client execs
 * the run relay (run-relay.ts), which reaches this proxy on a Unix socket in a fresh directory only
 * this user can enter. The relay needs no key or secret: the proxy's mTLS connection carries the run.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AgentClient } from '../../gen/proto/rbs/v1/Agent';
import type { ExecRequest } from '../../gen/proto/command_server/ExecRequest';
import type { RemoteRunFrame__Output } from '../../gen/proto/rbs/v1/RemoteRunFrame';
import { ownExecRequest } from '../../lib/exec-request';
import { FRAME, type FrameKind, encodeExit, encodeFrame, frameReader } from './relay-frames';

/** The client execs the relay right after the command ends; a socket nobody opens by then is removed. */
const CONNECT_WITHIN_MS = 60_000;
const RELAY = path.join(__dirname, 'run-relay.js');

export interface RemoteRun {
  agent: AgentClient;
  /** The RunTarget's remote_run_id. */
  remoteRunId: string;
  /** Where the client runs the relay: the client's working directory on this machine. */
  clientCwd: string;
  log: (message: string) => void;
}

/** Opens the relay's socket and returns the exec request that starts the relay. */
export async function prepareRemoteRun(run: RemoteRun): Promise<ExecRequest> {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'rbs-run-')); // mode 0700
  const socketPath = path.join(dir, 'relay');
  const server = net.createServer();
  const cleanUp = () => {
    clearTimeout(expiry);
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const expiry = setTimeout(() => (run.log(`nobody ran the remote \`bazel run\` relay at ${socketPath}`), cleanUp()), CONNECT_WITHIN_MS);
  server.once('connection', (socket) => {
    cleanUp(); // one relay per run
    relay(socket, run);
  });
  await new Promise<void>((resolve, reject) => server.listen(socketPath, resolve).once('error', reject));
  return ownExecRequest({
    workingDirectory: Buffer.from(run.clientCwd),
    argv: [process.execPath, RELAY, socketPath].map((arg) => Buffer.from(arg)),
    environmentVariable: [],
  });
}

/** Relays between the relay's socket and the agent's RunRemotely until the program exits. */
function relay(socket: net.Socket, { agent, remoteRunId, log }: RemoteRun): void {
  const call = agent.runRemotely();
  let done = false;
  const end = (code: number, message: string) => {
    if (done) return;
    done = true;
    socket.end(encodeExit(code, message));
    call.cancel();
  };
  call.write({ start: remoteRunId });
  // The terminal's pace holds the agent back (gRPC flow control), instead of this proxy buffering.
  const forward = (kind: FrameKind, payload: Buffer) => {
    if (socket.write(encodeFrame(kind, payload))) return;
    call.pause();
    socket.once('drain', () => call.resume());
  };
  call.on('data', (frame: RemoteRunFrame__Output) => {
    if (frame.frame === 'stdout') forward(FRAME.stdout, frame.stdout!);
    else if (frame.frame === 'stderr') forward(FRAME.stderr, frame.stderr!);
    else if (frame.frame === 'exit') {
      const { code, message, signal } = frame.exit!;
      if (signal) socket.write(encodeFrame(FRAME.killedBy, Buffer.from(signal)));
      end(code, message ? `RBS: ${message}\n` : '');
    }
  });
  call.on('error', (err) => end(37, `RBS: the remote \`bazel run\` failed: ${err.message}\n`));
  call.on('end', () => end(37, 'RBS: the remote `bazel run` ended without an exit code\n'));
  const read = frameReader((kind, payload) => {
    if (kind === FRAME.stdin) call.write({ stdin: payload });
    else if (kind === FRAME.stdinEof) call.write({ stdinEof: true });
    else if (kind === FRAME.signal) call.write({ signal: payload.toString() });
  });
  socket.on('data', (chunk: Buffer) => {
    try {
      read(chunk);
    } catch (err) {
      end(37, `RBS: the remote \`bazel run\` relay sent ${(err as Error).message}\n`);
    }
  });
  // The relay gone (its terminal closed, killed): the remote program must not run on alone.
  socket.on('close', () => {
    if (!done) log('the remote `bazel run` relay went away: stopping the remote program');
    done = true;
    call.cancel();
  });
  socket.on('error', () => undefined);
}
