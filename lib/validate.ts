/**
 * Validation of the inputs that name things (users, workspaces, sessions), shared by the CLI and
 * the orchestrator so both reject the same values with the same messages. Each validator returns
 * the canonical form of a valid value and throws InvalidInputError otherwise.
 */

import type { CommandReport } from './domain';

export class InvalidInputError extends Error {
  constructor(
    /** The input at fault, e.g. 'user', 'workspace', 'sessionId'. */
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = 'InvalidInputError';
  }
}

const MAX_USER_CODE_POINTS = 128;
/** Linux PATH_MAX. */
const MAX_PATH_BYTES = 4096;
/** C0, DEL and C1 controls, and unpaired surrogates (not Unicode, and unencodable in URIs). */
const FORBIDDEN_CHAR = /[\u0000-\u001f\u007f-\u009f]|\p{Cs}/u;
const SESSION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Describes the first control character or unpaired surrogate in `s`, if any. */
function forbiddenCharacter(s: string): string | undefined {
  const codePoints = [...s];
  const position = codePoints.findIndex((c) => FORBIDDEN_CHAR.test(c));
  if (position < 0) return undefined;
  const codePoint = codePoints[position].codePointAt(0)!;
  const kind = codePoint >= 0xd800 && codePoint <= 0xdfff ? 'an unpaired surrogate' : 'a control character';
  const hex = codePoint.toString(16).toUpperCase().padStart(4, '0');
  return `${kind} (U+${hex}) at position ${position}`;
}

/** Quotes an input for an error message without flooding it. */
function quote(s: string): string {
  const codePoints = [...s];
  return JSON.stringify(codePoints.slice(0, 64).join('')) + (codePoints.length > 64 ? '…' : '');
}

/**
 * A user name: 1 to 128 code points (after NFC normalization), no control characters, no '/', not
 * only whitespace. Returns it NFC-normalized so that visually identical names are one user.
 * Positions in messages are 0-based code-point indexes into the input.
 */
export function validateUserName(user: string): string {
  const fail = (message: string): never => {
    throw new InvalidInputError('user', `user name ${message}`);
  };
  const forbidden = forbiddenCharacter(user);
  if (forbidden) fail(`contains ${forbidden}`);
  const slash = [...user].indexOf('/');
  if (slash >= 0) fail(`contains '/' at position ${slash}`);
  const normalized = user.normalize('NFC');
  const length = [...normalized].length;
  if (length < 1 || length > MAX_USER_CODE_POINTS) {
    fail(`must be 1 to ${MAX_USER_CODE_POINTS} characters, got ${length}`);
  }
  if (/^\s+$/u.test(normalized)) fail('must not be only whitespace');
  return normalized;
}

/**
 * A workspace: an absolute, already normalized POSIX path other than '/'. Normalization is required
 * rather than applied because two spellings of one directory must not become two workspaces, and
 * resolving '..' without the client's filesystem (symlinks) would be a guess.
 */
export function validateWorkspacePath(p: string): string {
  const fail = (message: string): never => {
    throw new InvalidInputError('workspace', `workspace path ${message}`);
  };
  const forbidden = forbiddenCharacter(p);
  if (forbidden) fail(`contains ${forbidden}`);
  if (!p.startsWith('/')) fail(`must be absolute (start with '/'), got ${quote(p)}`);
  const bytes = Buffer.byteLength(p, 'utf8');
  if (bytes > MAX_PATH_BYTES) fail(`must be at most ${MAX_PATH_BYTES} bytes, got ${bytes}`);
  if (p === '/') fail('must not be the root directory');
  if (p.endsWith('/')) fail(`must not end with '/', got ${quote(p)}`);
  const segments = p.slice(1).split('/');
  if (segments.includes('')) fail(`must not contain '//', got ${quote(p)}`);
  for (const dots of ['.', '..']) {
    if (segments.includes(dots)) fail(`must not contain a '${dots}' segment, got ${quote(p)}`);
  }
  return p;
}

/** A session id: a UUID v4 in lowercase, the only form the orchestrator mints. */
export function validateSessionId(id: string): string {
  if (!SESSION_ID.test(id)) {
    throw new InvalidInputError('sessionId', `session id must be a lowercase UUID v4, got ${quote(id)}`);
  }
  return id;
}

/** A host name or IP literal and a port, as agent addresses are: at most this long. */
const AGENT_ADDRESS = /^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]):[0-9]{1,5}$/;

/** An agent address a caller reports (GetServerRequest.unreachable_agent): `host:port`, nothing else. */
export function validateAgentAddress(address: string): string {
  if (!AGENT_ADDRESS.test(address)) {
    throw new InvalidInputError('unreachableAgent', `unreachable agent address must be host:port, got ${quote(address)}`);
  }
  return address;
}

/** Bazel's command names are short lowercase words (build, test, aquery, mobile-install). */
const COMMAND_VERB = /^[a-z][a-z0-9_-]{0,31}$/;
/** A week: no command a proxy reports ran longer. */
const MAX_COMMAND_MS = 7 * 24 * 3600_000;

/** A command a caller reports (HeartbeatRequest.command): it lands in the session's history, so only plain values. */
export function validateCommandReport(report: { verb?: string; durationMs?: number; exitCode?: number }): CommandReport {
  const { verb = '', durationMs = -1, exitCode = -1 } = report;
  if (!COMMAND_VERB.test(verb)) throw new InvalidInputError('command', `command verb must be a lowercase word of at most 32 characters, got ${quote(verb)}`);
  if (!Number.isInteger(durationMs) || durationMs < 0 || durationMs > MAX_COMMAND_MS) {
    throw new InvalidInputError('command', `command duration must be 0 to ${MAX_COMMAND_MS} ms, got ${durationMs}`);
  }
  if (!Number.isInteger(exitCode) || exitCode < 0 || exitCode > 255)
    throw new InvalidInputError('command', `command exit code must be 0 to 255, got ${exitCode}`);
  return { verb, durationMs, exitCode };
}
