/**
 * A command's stdout and stderr as the developer must read them: the agent's paths rewritten to the
 * laptop's, each stream on its own, with nothing held back for long (progress lines end in `\r`).
 */
import { type PathPair, PathRewriter } from '../../lib/bazel/path-rewriter';
import { EventFileNoticeFilter } from './event-file-notice';
import type { RunResponse__Output } from '../../gen/proto/command_server/RunResponse';

/** A tail that may begin a path goes out as it is once nothing else has come for this long. */
export const IDLE_FLUSH_MS = 50;

type Send = (response: RunResponse__Output) => void;

const EMPTY = Buffer.alloc(0);
const response = (fields: Partial<RunResponse__Output>): RunResponse__Output => ({
  cookie: '',
  standardOutput: EMPTY,
  standardError: EMPTY,
  finished: false,
  exitCode: 0,
  commandId: '',
  terminationExpected: false,
  execRequest: null,
  failureDetail: EMPTY,
  ...fields,
});

export interface LaptopOutput {
  send: Send;
  /** The command is over: what is still held goes out (there was no final response to carry it). */
  close(): void;
}

export interface LaptopOutputOptions {
  /** Printed on stderr after the command's own output. */
  note?: string;
  /** The agent added a build event file the developer did not ask for: Bazel's notice of it goes. */
  ownEventFile?: boolean;
}

interface Stream {
  write(chunk: Buffer): Buffer;
  /** The end of the stream. */
  flush(): Buffer;
  /** Nothing came for IDLE_FLUSH_MS. */
  idle(): Buffer;
  /** How long until idle() should be called again for what it still holds; undefined if nothing. */
  holdingFor(): number | undefined;
}

/** Stderr in laptop paths, without what only the agent's own build event file made Bazel print. */
function laptopStderr(pairs: readonly PathPair[], ownEventFile: boolean): Stream {
  const paths = new PathRewriter(pairs);
  if (!ownEventFile) return { write: (chunk) => paths.write(chunk), flush: () => paths.flush(), idle: () => paths.flush(), holdingFor: () => undefined };
  const notice = new EventFileNoticeFilter();
  return {
    write: (chunk) => paths.write(notice.write(chunk)),
    flush: () => Buffer.concat([paths.write(notice.flush()), paths.flush()]),
    idle: () => Buffer.concat([paths.write(notice.idle()), paths.flush()]),
    holdingFor: () => notice.holdingFor(),
  };
}

/**
 * Wraps `send`: every response's output rewritten; what is held back comes out before the final
 * response (followed by `note`, if any, on stderr), or alone after IDLE_FLUSH_MS of quiet.
 */
export function laptopOutput(pairs: readonly PathPair[], send: Send, { note = '', ownEventFile = false }: LaptopOutputOptions = {}): LaptopOutput {
  const stdout = new PathRewriter(pairs);
  const stderr = laptopStderr(pairs, ownEventFile);
  let idle: NodeJS.Timeout | undefined;
  const flush = (quiet = false) => {
    const [standardOutput, standardError] = [stdout.flush(), quiet ? stderr.idle() : stderr.flush()];
    if (standardOutput.length || standardError.length) send(response({ standardOutput, standardError }));
    const holding = quiet ? stderr.holdingFor() : undefined;
    if (holding !== undefined) idle = setTimeout(() => flush(true), holding);
  };
  const relay = (given: RunResponse__Output) => {
    clearTimeout(idle);
    const standardOutput = stdout.write(given.standardOutput ?? EMPTY);
    const standardError = stderr.write(given.standardError ?? EMPTY);
    if (!given.finished) {
      send({ ...given, standardOutput, standardError });
      idle = setTimeout(() => flush(true), IDLE_FLUSH_MS);
      return;
    }
    const standardErrorEnd = Buffer.concat([standardError, stderr.flush(), Buffer.from(note)]);
    send({ ...given, standardOutput: Buffer.concat([standardOutput, stdout.flush()]), standardError: standardErrorEnd });
  };
  return {
    send: relay,
    close: () => {
      clearTimeout(idle);
      flush();
    },
  };
}
