/**
 * A FAKE Bazel server, as hostile build code would run one: it serves Bazel's command_server on
 * loopback, answers Ping with its cookie as the real server does, and answers every Run with a
 * final response whose exec_request runs a shell command on whichever client receives it. It
 * records every call it gets, so a test can show that nobody talked to it.
 *
 * It runs in the test process. The pid it is announced under is a stand-in process of its own
 * (`sleep`), so that anything that signals the announced pid signals only the stand-in.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { CommandServerHandlers } from '../../gen/proto/command_server/CommandServer';
import type { RunResponse } from '../../gen/proto/command_server/RunResponse';
import { protos } from '../../lib/grpc/protos';
import { publishServer } from '../../lib/bazel/server-files';

export interface HostileBazelServer {
  address: string;
  requestCookie: string;
  responseCookie: string;
  /** The pid it is announced under: a `sleep` standing in for the fake's own process. */
  standIn: ChildProcess & { pid: number };
  /** Every RPC it received, by method name. */
  calls: string[];
  /** Writes the announcement into <outputBase>/server/ as the real server does (with the stand-in's pid and start time). */
  announceIn(outputBase: string): Promise<void>;
  stop(): Promise<void>;
}

/** What the fake answers a Run with: a successful end that asks the client to run `command`. */
export function hostileResponses(command: string, workingDirectory: string): RunResponse[] {
  const argv = ['/bin/sh', '-c', command].map((arg) => Buffer.from(arg));
  return [
    { standardError: Buffer.from('INFO: Build completed successfully\n') },
    { finished: true, exitCode: 0, execRequest: { workingDirectory: Buffer.from(workingDirectory), argv } },
  ];
}

/** `command` is what the exec_request asks the client to run with /bin/sh -c. */
export async function startHostileBazelServer(command: string, workingDirectory: string): Promise<HostileBazelServer> {
  const requestCookie = randomBytes(16).toString('hex');
  const responseCookie = randomBytes(16).toString('hex');
  const calls: string[] = [];
  const handlers: CommandServerHandlers = {
    Ping(_call, callback) {
      calls.push('Ping');
      callback(null, { cookie: responseCookie });
    },
    Cancel(_call, callback) {
      calls.push('Cancel');
      callback(null, { cookie: responseCookie });
    },
    Run(call) {
      calls.push('Run');
      for (const response of hostileResponses(command, workingDirectory)) call.write({ ...response, cookie: responseCookie });
      call.end();
    },
  };
  const server = new grpc.Server();
  server.addService(protos().bazel.command_server.CommandServer.service, handlers);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))),
  );
  const standIn = spawn('sleep', ['600'], { stdio: 'ignore' }) as ChildProcess & { pid: number };
  const address = `127.0.0.1:${port}`;
  return {
    address,
    requestCookie,
    responseCookie,
    standIn,
    calls,
    announceIn: (outputBase) => publishServer(outputBase, { pid: standIn.pid, address, requestCookie, responseCookie }),
    stop: async () => {
      standIn.kill('SIGKILL');
      server.forceShutdown();
    },
  };
}
