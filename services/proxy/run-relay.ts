/**
 * The program the Bazel client execs for a remote `bazel run` (the proxy's own exec request names
 * it): it connects to the proxy on the private socket named on its command line (in a directory
 * only this user can enter: the path is no secret, and nothing else is needed) and relays stdin,
 * signals, stdout, stderr and the exit code of the program that runs on the agent.
 * Ctrl-C is passed on, as it would reach a local program; the remote program decides what to do.
 */
import * as net from 'node:net';
import { FRAME, decodeExit, encodeFrame, frameReader } from './relay-frames';

const LOST_EXIT_CODE = 37;
const RELAYED_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];

function main(socketPath: string | undefined): void {
  if (!socketPath) {
    process.stderr.write('usage: run-relay SOCKET (the RBS proxy runs it for `bazel run`)\n');
    process.exit(2);
  }
  let exited = false;
  let killedBy: NodeJS.Signals | undefined;
  const socket = net.connect(socketPath);
  const exit = (code: number, message: string) => {
    exited = true;
    process.stdin.destroy();
    socket.destroy();
    if (message) process.stderr.write(message);
    process.stdout.write('', () => {
      // As the program ended: by its signal (the client's parent sees what it would see locally).
      process.exitCode = code; // should the signal not end us
      if (!killedBy) return process.exit(code);
      process.removeAllListeners(killedBy);
      process.kill(process.pid, killedBy);
    });
  };
  for (const signal of RELAYED_SIGNALS) process.on(signal, () => socket.write(encodeFrame(FRAME.signal, Buffer.from(signal))));
  socket.on('connect', () => {
    process.stdin.on('data', (chunk: Buffer) => socket.write(encodeFrame(FRAME.stdin, chunk)));
    process.stdin.on('end', () => socket.write(encodeFrame(FRAME.stdinEof)));
    process.stdin.on('error', () => socket.write(encodeFrame(FRAME.stdinEof)));
  });
  socket.on(
    'data',
    frameReader((kind, payload) => {
      if (kind === FRAME.stdout) process.stdout.write(payload);
      else if (kind === FRAME.stderr) process.stderr.write(payload);
      else if (kind === FRAME.killedBy && RELAYED_SIGNALS.includes(payload.toString() as NodeJS.Signals)) killedBy = payload.toString() as NodeJS.Signals;
      else if (kind === FRAME.exit) {
        const { code, message } = decodeExit(payload);
        exit(code, message);
      }
    }),
  );
  socket.on('error', (err) => exited || exit(LOST_EXIT_CODE, `RBS: the remote \`bazel run\` lost its proxy at ${socketPath}: ${err.message}\n`));
  socket.on('close', () => exited || exit(LOST_EXIT_CODE, 'RBS: the remote `bazel run` ended without an exit code: its proxy went away\n'));
}

main(process.argv[2]);
