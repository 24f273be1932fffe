/**
 * What of a developer's workspace reaches the agent, as rsync filter arguments. The sending rsync
 * applies them; it also passes them to the receiver, where they protect the same paths from
 * --delete, so what a build leaves in the agent's copy survives.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Top-level bazel-* convenience links point outside the workspace; .git is history the build does
 * not need; .gitignore'd files are build products or local clutter.
 */
const FIXED_FILTERS = ['--exclude=/bazel-*', '--exclude=.git/', '--filter=:- .gitignore'];

/** The filter arguments for syncing `workspace` (its .bazelignore is read now). */
export function workspaceFilters(workspace: string): string[] {
  return [...FIXED_FILTERS, ...bazelignoreExcludes(workspace)];
}

/** .bazelignore lists directories, relative to the workspace root, that Bazel never reads. */
function bazelignoreExcludes(workspace: string): string[] {
  const file = path.join(workspace, '.bazelignore');
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .map((line) => line.trim().replace(/^\.\//, '').replace(/\/+$/, ''))
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((dir) => `--exclude=/${dir.replace(/[*?[]/g, '\\$&')}/`); // Bazel reads the paths literally
}
