/**
 * The proxy's face to the Bazel client: Bazel's own command_server.CommandServer on loopback, as
 * the real server serves it (insecure: the client never uses TLS there, and the cookies are what
 * keep other local users out). Every command is handed to a CommandRelay; this file only enforces
 * the protocol around it: cookies, one final response per command, no exec_request, cancellation,
 * idleness.
 */
import { timingSafeEqual } from 'node:crypto';
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
   * the command is over. The signal aborts when the client is gone: the relay must then cancel.
   */
  run(request: RunRequest, onResponse: (response: RunResponse) => void, signal: AbortSignal): Promise<void>;
  /** Interrupts a running command, by the command_id its responses carried. */
  cancel(commandId: string): Promise<void>;
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
const LOCAL_ENVIRONMENTAL_ERROR = 36;
const BLAZE_INTERNAL_ERROR = 37;

export async function startCommandServer(options: CommandServerOptions): Promise<CommandServer> {
  const { relay, responseCookie } = options;
  const expectedCookie = Buffer.from(options.requestCookie);
  const cookieMatches = (cookie: string) => {
    const given = Buffer.from(cookie);
    return given.length === expectedCookie.length && timingSafeEqual(given, expectedCookie);
  };
  const activity = idleWatch(options.maxIdleSecs ?? 0, () => options.onIdle?.());

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
      const { commandId } = call.request;
      activity.during(relay.cancel(commandId)).then(
        () => callback(null, { cookie: responseCookie }),
        (err: Error) => callback({ code: grpc.status.INTERNAL, details: `cannot cancel command ${commandId}: ${err.message}` }),
      );
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
      const aborted = new AbortController();
      call.on('cancelled', () => aborted.abort());

      let finished = false;
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
      const fail = (reason: string) => {
        process.stderr.write(`RBS proxy: ${reason}\n`);
        // A Buffer: a string in a bytes field would be taken for base64.
        send({ standardError: Buffer.from(`RBS proxy: ${reason}\n`), finished: true, exitCode: BLAZE_INTERNAL_ERROR });
      };
      // Through a promise, so that a relay throwing synchronously fails this command only.
      activity.during(Promise.resolve().then(() => relay.run(request, send, aborted.signal))).then(
        () => finished || aborted.signal.aborted || fail('the command ended without an exit code'),
        (err: Error) => fail(`the command failed: ${err.message}`),
      );
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
  const stop = () =>
    (stopping ??= (activity.stop(), shutdownGracefully(server)));

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
