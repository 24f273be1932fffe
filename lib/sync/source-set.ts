/**
 * What of a developer's workspace reaches the agent: exactly the files local Bazel would read. In a
 * git work tree that is every tracked file (even one an ignore pattern matches) and every untracked
 * file git's own rules keep, as git itself lists them (git-view.ts); outside git, everything. In
 * both, `.git` and the top-level convenience links stay home (bazel-*, and any other Bazel makes into the laptop's
 * execroot: another --symlink_prefix's), and the workspace's .rbs.json
 * adds (sync.include) and removes (sync.exclude) paths. `.bazelignore` removes nothing: local Bazel
 * still reads those directories, e.g. through local_repository.
 *
 * The set is given to rsync as anchored literal filter rules on its stdin (SOURCE_SET_ARGS), so
 * rsync still walks the tree and --delete still works; rsync passes the rules on to the receiver,
 * where they protect the same paths from --delete, so what a build leaves in the agent's copy
 * survives.
 */
import * as fs from 'node:fs';
import { isConvenienceLink } from '../bazel/convenience-links';
import { readWorkspaceSettings } from '../workspace-settings';
import { byRepository, gitView, gitViewOf, type GitView } from './git-view';
import { refuseOutsideLinks } from './outside-links';

/** rsync reads the rules, NUL-separated, from its stdin. */
export const SOURCE_SET_ARGS = ['--from0', '--exclude-from=-'];

/**
 * `.git` at any level, a file (worktrees, submodules) or a directory, is history, not a source; the
 * bazel-* links at the top point into the laptop's output base.
 */
const FIXED_RULES = ['- .git', '- /bazel-*'];

export interface SourceSetOptions {
  /** Workspace-relative paths, all that changed since the last sync: the rules need cover only them. */
  changed?: string[];
  /** Symlinks that leave the workspace are refused (the default), or left to the receiver's --safe-links. */
  outsideLinks?: 'refuse' | 'skip';
  /** The laptop's output base: top-level links into it are Bazel's convenience links, whatever --symlink_prefix named them. */
  outputBase?: string;
}

/**
 * The rsync filter rules for syncing `workspace` (to be fed to rsync with SOURCE_SET_ARGS). Throws,
 * naming them, when symlinks in the set point outside the workspace (outside-links.ts), and when
 * .rbs.json is bad or git cannot say what it ignores.
 */
export async function sourceSetRules(workspace: string, options: SourceSetOptions = {}): Promise<Buffer> {
  const { sync } = readWorkspaceSettings(workspace);
  const { changed } = options;
  const excluded = sync.exclude.map((file) => Buffer.from(file));
  const git = await gitViewOfChanges(workspace, changed);
  // The remote Bazel makes its own; the rules also keep the receiver's from --delete.
  const convenience = options.outputBase ? convenienceLinks(workspace, options.outputBase) : [];
  if (options.outsideLinks !== 'skip') {
    const links = git ? git.links : findLinks(workspace, changed ?? ['']);
    // git lists no links under the ignored paths that sync.include brings in.
    const included = git ? findLinks(workspace, changed ? overlap(changed, sync.include) : sync.include) : [];
    refuseOutsideLinks(
      workspace,
      [...links, ...included].filter((link) => !staysHome(link) && !isUnder(link, excluded) && !isUnder(link, convenience)),
    );
  }
  const ignored = git?.ignored ?? [];
  const rules = [
    ...FIXED_RULES.map((rule) => Buffer.from(rule)),
    ...convenience.map((link) => rule('-', link)),
    ...excluded.map((file) => rule('-', file)),
    ...includeRules(sync.include, ignored),
    ...ignored.map((file) => rule('-', file)),
  ];
  return Buffer.concat(rules.flatMap((r) => [r, Buffer.of(0)]));
}

/** git's view of the workspace, or of the changed paths, each asked of the repository that owns it. */
async function gitViewOfChanges(workspace: string, changed?: string[]): Promise<GitView | null> {
  if (!changed) return gitView(workspace);
  if (changed.length === 0) return { ignored: [], links: [] };
  const view: GitView = { ignored: [], links: [] };
  for (const [repo, paths] of byRepository(workspace, changed)) {
    const inner = await gitViewOf(repo === '' ? workspace : `${workspace}/${repo}`, paths);
    if (!inner) {
      if (repo === '') return null; // not in git at all
      continue; // a .git that is no repository: its files are plain files of the outer one
    }
    const under = (entry: Buffer) => (repo === '' ? entry : Buffer.concat([Buffer.from(`${repo}/`), entry]));
    view.ignored.push(...inner.ignored.map(under));
    view.links.push(...inner.links.map(under));
  }
  return view;
}

/**
 * sync.include reaches into what git ignores: the path itself and everything under it, and the
 * directories down to it, but of an ignored directory on the way only that path.
 */
function includeRules(include: string[], ignored: Buffer[]): Buffer[] {
  const ignoredDirs = new Set(ignored.filter((entry) => entry.at(-1) === 0x2f).map((entry) => entry.toString('latin1')));
  const enter: Buffer[] = [];
  const fence: Buffer[] = [];
  for (const file of include) {
    const parts = file.split('/');
    let insideIgnored = false;
    for (let depth = 1; depth < parts.length; depth++) {
      const dir = parts.slice(0, depth).join('/');
      insideIgnored ||= ignoredDirs.has(Buffer.from(`${dir}/`).toString('latin1'));
      if (!insideIgnored) continue;
      enter.push(rule('+', Buffer.from(`${dir}/`)));
      fence.push(rule('-', Buffer.from(dir), '/*'));
    }
    enter.push(rule('+', Buffer.from(file)), rule('+', Buffer.from(file), '/***'));
  }
  return [...enter, ...fence];
}

/**
 * An anchored rule for the literal path `file` (+ `suffix`, a wildcard of ours). rsync takes a
 * pattern without wildcards literally, backslashes included, and one with wildcards as a glob in
 * which a backslash escapes: so the path's own wildcards and backslashes are escaped just then.
 */
function rule(kind: '+' | '-', file: Buffer, suffix = ''): Buffer {
  const wild = /[*?[]/.test(suffix) || file.some((byte) => WILDCARD_BYTES.has(byte));
  const escaped = wild ? Buffer.from([...file].flatMap((byte) => (ESCAPED_BYTES.has(byte) ? [0x5c, byte] : [byte]))) : file;
  return Buffer.concat([Buffer.from(`${kind} /`), escaped, Buffer.from(suffix)]);
}
const WILDCARD_BYTES = new Set([...'*?['].map((c) => c.charCodeAt(0)));
const ESCAPED_BYTES = new Set([...'*?[\\'].map((c) => c.charCodeAt(0)));

/** Whether `link` is one of `paths` or lies under one. */
function isUnder(link: Buffer, paths: Buffer[]): boolean {
  return paths.some((p) => link.equals(p) || (link.length > p.length && link[p.length] === 0x2f && link.subarray(0, p.length).equals(p)));
}

/** The workspace's top-level convenience links into `outputBase`, whatever --symlink_prefix named them. */
function convenienceLinks(workspace: string, outputBase: string): Buffer[] {
  return fs.readdirSync(workspace, { encoding: 'buffer' }).filter((name) => isConvenienceLink(workspace, name, outputBase));
}

/** Whether the FIXED_RULES keep `file` home. */
function staysHome(file: Buffer): boolean {
  const parts = file.toString('latin1').split('/');
  return parts.includes('.git') || parts[0].startsWith('bazel-');
}

/** The paths of `a` and of `b` that lie under (or are) a path of the other. */
function overlap(a: string[], b: string[]): string[] {
  const under = (x: string, ys: string[]) => ys.some((y) => x === y || x.startsWith(`${y}/`));
  return [...a.filter((x) => under(x, b)), ...b.filter((y) => under(y, a))];
}

/** Every symlink under `roots` (workspace-relative; '' is the workspace), but under .git and bazel-*. */
function findLinks(workspace: string, roots: string[]): Buffer[] {
  const links: Buffer[] = [];
  const walk = (rel: Buffer) => {
    const full = Buffer.concat([Buffer.from(`${workspace}/`), rel]);
    const stat = fs.lstatSync(full, { throwIfNoEntry: false });
    if (!stat) return;
    if (stat.isSymbolicLink()) links.push(rel);
    if (!stat.isDirectory()) return;
    for (const name of fs.readdirSync(full, { encoding: 'buffer' })) {
      const child = rel.length === 0 ? name : Buffer.concat([rel, Buffer.from('/'), name]);
      if (!staysHome(child)) walk(child);
    }
  };
  for (const root of roots) walk(Buffer.from(root));
  return links;
}
