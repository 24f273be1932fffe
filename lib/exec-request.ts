/**
 * `RunResponse.exec_request` asks the Bazel client to exec a program (`bazel run`), and a 4.2.x
 * client execs any it gets. Whatever the remote side sends, nothing of it may reach the laptop's
 * client: `bazel run` is not supported yet (issue #9), so a response carrying one becomes the
 * command's end, with an exit code that says it failed and a message that says why.
 */

/** Bazel's "command line error": the command asked for is one RBS cannot do. */
export const EXEC_REFUSED_EXIT_CODE = 2;

export const EXEC_REFUSED_MESSAGE =
  'bazel run is not supported through RBS yet (issue #9): the build ran remotely, but the program ' +
  'it would run is not executed here, nor anything else the remote side asks for.\n';

interface ResponseFields {
  execRequest?: unknown;
  /** A string here is base64, as protobuf's JSON form of bytes. */
  standardError?: Buffer | Uint8Array | string;
  finished?: boolean;
  exitCode?: number;
}

/** `response` unchanged if it carries no exec_request; else the final failure that replaces it. */
export function refuseExecRequest<R extends ResponseFields>(response: R): R {
  if (response.execRequest === undefined || response.execRequest === null) return response;
  const given = response.standardError ?? Buffer.alloc(0);
  const before = typeof given === 'string' ? Buffer.from(given, 'base64') : Buffer.from(given);
  const standardError = Buffer.concat([before, Buffer.from(EXEC_REFUSED_MESSAGE)]);
  return { ...response, execRequest: null, standardError, finished: true, exitCode: EXEC_REFUSED_EXIT_CODE };
}
