/**
 * When a remote build fails on an input that exists on the laptop, the sync left it out: git
 * ignores it, or .rbs.json's sync.exclude names it. Local Bazel would have read it, so the developer
 * is told so, by name, and how to send it. The inputs are read off Bazel 4.2.3's own messages.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SETTINGS_FILE, readWorkspaceSettings } from '../workspace-settings';
import { gitEnv } from './git-view';

/** A main-repository label as Bazel quotes it: `//pkg:name` or `@//pkg:name`. */
const LABEL = String.raw`@?//([^':]*):([^']+)`;

/**
 * Bazel's messages that name a missing source, each giving workspace-relative candidates:
 * a genrule's or any action's source (`missing input file '//pkg:file'`), a file label in another
 * package (`no such target '//pkg:file': target 'file' not declared in package`), a package whose
 * BUILD file is missing, a .bzl file that a load() names, and a header the compiler cannot find.
 */
const MESSAGES: Array<{ pattern: RegExp; files: (m: RegExpMatchArray) => string[] }> = [
  { pattern: new RegExp(`missing input file '${LABEL}'`, 'g'), files: (m) => [join(m[1], m[2])] },
  { pattern: new RegExp(`no such target '${LABEL}': target '[^']*' not declared in package`, 'g'), files: (m) => [join(m[1], m[2])] },
  { pattern: /no such package '@?(?:\/\/)?([^'@]*)': BUILD file not found/g, files: (m) => buildFiles(m[1]) },
  { pattern: /Unable to find package for @?\/\/([^:\s]*):\S+: BUILD file not found/g, files: (m) => buildFiles(m[1]) },
  { pattern: new RegExp(`cannot load '${LABEL}': no such file`, 'g'), files: (m) => [join(m[1], m[2])] },
  { pattern: /fatal error: ([^\s:'"]+): No such file or directory/g, files: (m) => [m[1]] },
];

/** Past this many files the hint names the first ones only. */
const MAX_FILES = 10;

/** The workspace-relative sources that `stderr` (a failed command's) says are missing. */
export function missingSources(stderr: string): string[] {
  const found = new Set<string>();
  for (const { pattern, files } of MESSAGES) {
    for (const match of stderr.matchAll(pattern)) files(match).forEach((file) => found.add(file));
  }
  return [...found].filter(isInside);
}

/**
 * The message for the developer when `stderr`, a failed command's, names missing sources that
 * exist in `workspace` on the laptop; null when it names none.
 */
export function ignoredInputHint(stderr: string, workspace: string): string | null {
  const present = missingSources(stderr).filter((file) => fs.lstatSync(path.join(workspace, file), { throwIfNoEntry: false }));
  const unsent = notSent(workspace, present);
  if (unsent.length === 0) return null;
  const named = unsent.slice(0, MAX_FILES);
  const more = unsent.length > named.length ? ` (and ${unsent.length - named.length} more)` : '';
  return (
    `RBS: the remote build could not find ${named.join(', ')}${more}, which exist in ${workspace} but were not sent ` +
    `to it: git ignores them, or "sync.exclude" in ${SETTINGS_FILE} names them. Local Bazel would read them. To send ` +
    `them, add them to "sync.include" in ${path.join(workspace, SETTINGS_FILE)}, e.g. ` +
    `{"sync": {"include": ${JSON.stringify(named)}}}\n`
  );
}

/**
 * Of `files`, those the sync leaves out: what sync.exclude names, or git ignores (never a tracked
 * file) and sync.include does not bring back. A file that was sent is no business of this hint.
 */
function notSent(workspace: string, files: string[]): string[] {
  if (files.length === 0) return [];
  let settings;
  try {
    settings = readWorkspaceSettings(workspace).sync;
  } catch {
    return []; // a bad .rbs.json fails the sync itself, with its own message
  }
  const under = (file: string, paths: string[]) => paths.some((p) => file === p || file.startsWith(`${p}/`));
  const git = spawnSync('git', ['check-ignore', '-z', '--stdin'], {
    cwd: workspace,
    env: gitEnv(),
    input: files.map((f) => `${f}\0`).join(''),
    encoding: 'utf8',
  });
  const ignored = new Set(git.status === 0 ? git.stdout.split('\0') : []);
  return files.filter((file) => under(file, settings.exclude) || (ignored.has(file) && !under(file, settings.include)));
}

function join(pkg: string, name: string): string {
  return pkg === '' ? name : `${pkg}/${name}`;
}

function buildFiles(pkg: string): string[] {
  return ['BUILD.bazel', 'BUILD'].map((name) => join(pkg, name));
}

/** Only plain paths inside the workspace are looked up. */
function isInside(file: string): boolean {
  const normal = path.posix.normalize(file);
  return normal === file && !path.isAbsolute(file) && normal !== '..' && !normal.startsWith('../');
}

/** Lines of stderr kept for the hint: only those naming a missing source, and no more than these. */
const MAX_KEPT_LINES = 1000;

/**
 * Follows a command's responses as they stream; `hintBefore` returns the hint (stderr bytes) to send
 * just ahead of the final response of a failed command, or null. Memory stays bounded: only the
 * lines that name a missing source are kept.
 */
export function ignoredInputWatch(workspace: string): {
  hintBefore(response: { standardError?: unknown; finished?: boolean; exitCode?: number }): Buffer | null;
} {
  const kept: string[] = [];
  let partial = '';
  return {
    hintBefore(response) {
      if (Buffer.isBuffer(response.standardError) || response.standardError instanceof Uint8Array) {
        const lines = (partial + Buffer.from(response.standardError).toString('utf8')).split('\n');
        partial = lines.pop()!.slice(-64 * 1024);
        for (const line of lines) if (kept.length < MAX_KEPT_LINES && missingSources(line).length > 0) kept.push(line);
      }
      if (!response.finished || !response.exitCode) return null;
      const hint = ignoredInputHint([...kept, partial].join('\n'), workspace);
      return hint === null ? null : Buffer.from(hint);
    },
  };
}
