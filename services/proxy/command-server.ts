/**
 * The proxy's face to the Bazel client: Bazel's own command_server.CommandServer on loopback, as
 * the real server serves it (insecure: the client never uses TLS there, and the cookies are what
 * keep other local users out). Every command is handed to a CommandRelay; this file only enforces
 * the protocol around it: cookies, one final response per command, no exec_request, cancellation,
 * idleness.
 *
 * Ctrl-C works in every phase of a command: as the real server does, the first response carries
 * the command's id (the client cancels only once it knows one), and it is the proxy's own, so a
 * Cancel needs no answer from the agent. An interrupted command that has not ended within
 * INTERRUPT_DEADLINE_MS is ended here, with exit 8 and a message saying so.
 */
import { randomUUID, timingSafeEqual } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { refuseExecRequest } from '../../lib/exec-request';
import { protos } from '../../lib/grpc/protos';
import { shutdownGracefully } from '../../lib/grpc/shutdown';
import type { CommandServerHandlers } from '../../gen/proto/command_server/CommandServer';
import type { RunRequest__Output as RunRequest } from '../../gen/proto/command_server/RunRequest';
import type { RunResponse } from '../../gen/proto/command_server/RunResponse';

export type { RunRequest, RunResponse };

/** Whatever actually runs the commands (a remote agent in production). */
export interface CommandRelay {
  /**
   * Runs one command, passing on its responses in order; the last has finished=true. Resolves once
   * the command is over. The signal aborts on Ctrl-C or when the client is gone: the relay must then
   * stop the command, within INTERRUPT_DEADLINE_MS.
   */
  run(request: RunRequest, onResponse: (response: RunResponse) => void, signal: AbortSignal): Promise<void>;
}

export interface CommandServerOptions {
  relay: CommandRelay;
  requestCookie: string;
  responseCookie: string;
  /** Seconds with no RPC in flight before onIdle is called; 0 or absent means never. */
  maxIdleSecs?: number;
  onIdle?: () => void;
  /** Called once the server stopped after a command that ends the server (`bazel shutdown`). */
  onTerminate?: () => void;
}

export interface CommandServer {
  /** 127.0.0.1:PORT, as published in command_port. */
  address: string;
  stop(): Promise<void>;
}

/** Bazel's exit codes that the proxy itself produces. */
const INTERRUPTED = 8;
const LOCAL_ENVIRONMENTAL_ERROR = 36;
const BLAZE_INTERNAL_ERROR = 37;

/** How long an interrupted command may take to end by itself: Ctrl-C ends the client within 2 s. */
export const INTERRUPT_DEADLINE_MS = 1_500;

export async function startCommandServer(options: CommandServerOptions): Promise<CommandServer> {
  const { relay, responseCookie } = options;
  const expectedCookie = Buffer.from(options.requestCookie);
  const cookieMatches = (cookie: string) => {
    const given = Buffer.from(cookie);
    return given.length === expectedCookie.length && timingSafeEqual(given, expectedCookie);
  };
  const activity = idleWatch(options.maxIdleSecs ?? 0, () => options.onIdle?.());
  /** The running commands, by the id their client knows them by. */
  const running = new Map<string, AbortController>();

  const handlers: CommandServerHandlers = {
    Ping(call, callback) {
      // As the real server: a wrong cookie gets an answer without ours, which the client rejects.
      // Only a client that knows the cookie keeps the proxy (and its session) alive.
      if (!cookieMatches(call.request.cookie)) return callback(null, {});
      activity.touch();
      callback(null, { cookie: responseCookie });
    },

    Cancel(call, callback) {
      if (!cookieMatches(call.request.cookie)) {
        callback({ code: grpc.status.PERMISSION_DENIED, details: 'wrong request cookie' });
        return;
      }
      // As the real server: an id it does not run (any more) is no error.
      running.get(call.request.commandId)?.abort(new Error('interrupted (Ctrl-C)'));
      activity.touch();
      callback(null, { cookie: responseCookie });
    },

    Run(call) {
      const request = call.request;
      if (!cookieMatches(request.cookie) || !request.clientDescription) {
        // As the real server: an exit code without our cookie; the client reports an invalid server.
        call.write({ exitCode: LOCAL_ENVIRONMENTAL_ERROR });
        call.end();
        return;
      }
      if (call.cancelled) return; // the client left before we got here
      const commandId = randomUUID();
      const aborted = new AbortController();
      running.set(commandId, aborted);
      call.write({ cookie: responseCookie, commandId });

      let finished = false;
      // A client that leaves before the end interrupts the command (one that leaves after it, nothing).
      call.on('cancelled', () => finished || aborted.abort(new Error('the client went away')));
      const send = (given: RunResponse) => {
        if (finished || call.cancelled) return;
        // The proxy builds no exec_request, so one from the agent's side never reaches the client.
        const response = refuseExecRequest(given);
        if (response !== given) process.stderr.write('RBS proxy: refused an exec_request from the agent; nothing was executed\n');
        finished = Boolean(response.finished);
        call.write({ ...response, cookie: responseCookie });
        if (!finished) return;
        call.end();
        if (response.terminationExpected) void stop().then(() => options.onTerminate?.());
      };
      const fail = (reason: string, exitCode = BLAZE_INTERNAL_ERROR) => {
        if (finished) return;
        process.stderr.write(`RBS proxy: command ${commandId}: ${reason}\n`);
        // A Buffer: a string in a bytes field would be taken for base64.
        send({ standardError: Buffer.from(`RBS proxy: ${reason}\n`), finished: true, exitCode });
      };
      let deadline: NodeJS.Timeout | undefined;
      aborted.signal.addEventListener('abort', () => {
        deadline = setTimeout(
          () => fail(`interrupted; the remote command had not ended ${INTERRUPT_DEADLINE_MS} ms later, and is being stopped`, INTERRUPTED),
          INTERRUPT_DEADLINE_MS,
        );
      });
      // Through a promise, so that a relay throwing synchronously fails this command only.
      activity
        .during(Promise.resolve().then(() => relay.run(request, send, aborted.signal)))
        .then(
          () =>
            fail(
              aborted.signal.aborted ? 'interrupted' : 'the command ended without an exit code',
              aborted.signal.aborted ? INTERRUPTED : BLAZE_INTERNAL_ERROR,
            ),
          (err: Error) => (aborted.signal.aborted ? fail(`interrupted (${err.message})`, INTERRUPTED) : fail(`the command failed: ${err.message}`)),
        )
        .finally(() => {
          clearTimeout(deadline);
          running.delete(commandId);
        });
    },
  };

  const server = new grpc.Server();
  server.addService(protos().bazel.command_server.CommandServer.service, handlers);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, bound) =>
      err ? reject(new Error(`proxy cannot listen on 127.0.0.1: ${err.message}`)) : resolve(bound),
    ),
  );

  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= (activity.stop(), shutdownGracefully(server)));

  return { address: `127.0.0.1:${port}`, stop };
}

/**
 * Counts RPCs in flight and calls onIdle once none has been for maxIdleSecs. A Ping with the right
 * cookie counts too, so a client that keeps checking keeps the server up; callers without the
 * cookie are never counted.
 */
function idleWatch(maxIdleSecs: number, onIdle: () => void) {
  let inFlight = 0;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const arm = () => {
    clearTimeout(timer);
    if (inFlight === 0 && maxIdleSecs > 0 && !stopped) timer = setTimeout(onIdle, maxIdleSecs * 1000);
  };
  arm();
  return {
    touch: arm,
    during<T>(work: Promise<T>): Promise<T> {
      inFlight++;
      clearTimeout(timer);
      return work.finally(() => {
        inFlight--;
        arm();
      });
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
