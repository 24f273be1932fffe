/**
 * `RunResponse.exec_request` asks the Bazel client to exec a program (`bazel run`), and a 4.2.x
 * client execs any it gets. Only exec requests the proxy built itself, from what it fetched and
 * checked, may reach the laptop's client: `ownExecRequest` marks them (in memory: no bytes from
 * the wire can carry the mark). Any other becomes the command's end, with an exit code that says
 * it failed and a message that says why.
 */
import type { ExecRequest } from '../gen/proto/command_server/ExecRequest';

/** Bazel's "command line error": the command asked for is one RBS cannot do. */
export const EXEC_REFUSED_EXIT_CODE = 2;

export const EXEC_REFUSED_MESSAGE =
  'RBS: the remote side asked this machine to execute a program; refused, nothing was executed ' +
  '(the proxy runs `bazel run` targets itself, from what it fetched and checked).\n';

const own = new WeakSet<object>();

/** Marks an exec request the proxy built as one the client may receive. */
export function ownExecRequest(request: ExecRequest): ExecRequest {
  own.add(request);
  return request;
}

interface ResponseFields {
  execRequest?: unknown;
  /** A string here is base64, as protobuf's JSON form of bytes. */
  standardError?: Buffer | Uint8Array | string;
  finished?: boolean;
  exitCode?: number;
}

/** `response` unchanged if it carries no exec_request or the proxy's own; else the final failure that replaces it. */
export function refuseExecRequest<R extends ResponseFields>(response: R): R {
  const exec = response.execRequest;
  if (exec === undefined || exec === null || (typeof exec === 'object' && own.has(exec))) return response;
  const given = response.standardError ?? Buffer.alloc(0);
  const before = typeof given === 'string' ? Buffer.from(given, 'base64') : Buffer.from(given);
  const standardError = Buffer.concat([before, Buffer.from(EXEC_REFUSED_MESSAGE)]);
  return { ...response, execRequest: null, standardError, finished: true, exitCode: EXEC_REFUSED_EXIT_CODE };
}
