/**
 * What git itself says about a work tree, for the source set (source-set.ts): the untracked paths
 * its ignore rules (.gitignore at every level, .git/info/exclude, core.excludesFile) drop, and the
 * symlinks among the files it keeps. Nested repositories and submodules, which git treats as one
 * opaque entry, are asked in turn, as local Bazel reads their files too. Paths stay raw bytes: a
 * name need not be UTF-8.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface GitView {
  /** Untracked paths that git ignores, relative to the directory asked; a directory ends in '/'. */
  ignored: Buffer[];
  /** The symlinks git keeps: tracked ones (mode 120000) and untracked ones it does not ignore. */
  links: Buffer[];
}

/** Enough for the listings of a multi-million-file tree. */
const MAX_LISTING_BYTES = 1 << 30;
const SLASH = 0x2f;

/**
 * git's view of `dir`, or null when `dir` is not in a git work tree. A git that fails otherwise
 * (say, it distrusts the repository's owner) throws: guessing would sync the wrong set silently.
 */
export async function gitView(dir: string): Promise<GitView | null> {
  const [ignored, staged, untracked] = await Promise.all([
    git(dir, IGNORED),
    git(dir, ['ls-files', '-z', '--stage']),
    git(dir, ['ls-files', '-z', '--others', '--exclude-standard']),
  ]);
  if (ignored === null || staged === null || untracked === null) return null;
  const view: GitView = { ignored: entries(ignored), links: [] };
  const nested: Buffer[] = [];
  for (const entry of entries(staged)) {
    const tab = entry.indexOf(0x09);
    const mode = entry.subarray(0, 6).toString('latin1');
    const file = entry.subarray(tab + 1);
    if (mode === '120000') view.links.push(file);
    else if (mode === '160000') nested.push(file); // a submodule
  }
  for (const file of entries(untracked)) {
    if (file.at(-1) === SLASH)
      nested.push(file.subarray(0, -1)); // a repository inside this one
    else if (lstat(dir, file)?.isSymbolicLink()) view.links.push(file);
  }
  for (const repo of new Set(nested.map((n) => n.toString('latin1')))) await addNested(dir, Buffer.from(repo, 'latin1'), view);
  return view;
}

/**
 * git's view of `pathspecs` only (literal paths relative to `dir`, each a file or a tree, present
 * or not), for a sync of a few changed paths: one question to git, whose index alone is a cost on
 * a large tree, and the symlinks and nested repositories found by walking the paths themselves.
 */
export async function gitViewOf(dir: string, pathspecs: string[]): Promise<GitView | null> {
  const ignored = (await noneIgnored(dir, pathspecs)) ? Buffer.alloc(0) : await git(dir, [...IGNORED, '--', ...pathspecs]);
  if (ignored === null) return null;
  const view: GitView = { ignored: entries(ignored), links: [] };
  const skipped = new Set(view.ignored.map((entry) => (entry.at(-1) === SLASH ? entry.subarray(0, -1) : entry).toString('latin1')));
  const walk = async (rel: Buffer): Promise<void> => {
    const name = rel.toString('latin1');
    // An ignored path, or one in an ignored directory (git names a changed path inside one by the directory).
    if ([...name.matchAll(/\//g)].some((m) => skipped.has(name.slice(0, m.index))) || skipped.has(name)) return;
    const stat = lstat(dir, rel);
    if (stat?.isSymbolicLink()) view.links.push(rel);
    if (!stat?.isDirectory()) return;
    if (fs.existsSync(Buffer.concat([Buffer.from(`${dir}/`), rel, Buffer.from('/.git')]))) return addNested(dir, rel, view);
    for (const name of fs.readdirSync(Buffer.concat([Buffer.from(`${dir}/`), rel]), { encoding: 'buffer' })) {
      if (name.toString('latin1') !== '.git') await walk(Buffer.concat([rel, Buffer.from('/'), name]));
    }
  };
  for (const file of pathspecs) await walk(Buffer.from(file));
  return view;
}

/**
 * Whether `pathspecs`, none a directory, all escape git's ignore patterns: then git keeps them,
 * tracked or not. The usual change (an edited source) is settled so, without reading the index,
 * which on a large tree is most of what a question to git costs.
 */
async function noneIgnored(dir: string, pathspecs: string[]): Promise<boolean> {
  if (pathspecs.some((file) => lstat(dir, Buffer.from(file))?.isDirectory())) return false;
  const matched = await git(dir, ['check-ignore', '--no-index', '-z', '--stdin'], Buffer.from(pathspecs.map((file) => `${file}\0`).join('')));
  return matched !== null && matched.length === 0;
}

const IGNORED = ['ls-files', '-z', '--others', '--ignored', '--exclude-standard', '--directory'];

function lstat(dir: string, file: Buffer): fs.Stats | undefined {
  return fs.lstatSync(Buffer.concat([Buffer.from(`${dir}/`), file]), { throwIfNoEntry: false });
}

/** A nested repository's own view, under its path; a submodule that is not checked out has none. */
async function addNested(dir: string, repo: Buffer, view: GitView): Promise<void> {
  const root = Buffer.concat([Buffer.from(`${dir}/`), repo]);
  if (!fs.existsSync(Buffer.concat([root, Buffer.from('/.git')]))) return;
  const cwd = root.toString('utf8');
  if (!Buffer.from(cwd).equals(root))
    throw new Error(`cannot ask git about the nested repository ${JSON.stringify(root.toString('latin1'))}: its path is not UTF-8`);
  const inner = await gitView(cwd);
  if (!inner) return;
  const under = (entry: Buffer) => Buffer.concat([repo, Buffer.from('/'), entry]);
  view.ignored.push(...inner.ignored.map(under));
  view.links.push(...inner.links.map(under));
}

/**
 * The innermost repository (a directory holding .git, the workspace itself included) that owns
 * each path, so that a change inside a nested repository or submodule is asked of that one.
 */
export function byRepository(workspace: string, paths: string[]): Map<string, string[]> {
  const groups = new Map<string, string[]>();
  for (const file of paths) {
    let repo = '';
    const parts = file.split('/');
    for (let depth = parts.length - 1; depth > 0; depth--) {
      const candidate = parts.slice(0, depth).join('/');
      if (fs.existsSync(path.join(workspace, candidate, '.git'))) {
        repo = candidate;
        break;
      }
    }
    const rel = repo === '' ? file : file.slice(repo.length + 1);
    groups.set(repo, [...(groups.get(repo) ?? []), rel]);
  }
  return groups;
}

/** NUL-terminated entries. */
function entries(listing: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let start = 0; start < listing.length;) {
    const end = listing.indexOf(0, start);
    out.push(listing.subarray(start, end < 0 ? listing.length : end));
    start = end < 0 ? listing.length : end + 1;
  }
  return out;
}

/** Variables that would point git at another repository than the one `dir` is in. */
const REPOSITORY_VARIABLES = ['GIT_DIR', 'GIT_WORK_TREE', 'GIT_INDEX_FILE', 'GIT_OBJECT_DIRECTORY', 'GIT_COMMON_DIR', 'GIT_NAMESPACE', 'GIT_PREFIX'];

/**
 * Settings that make git run a program: anyone who can write the repository's .git/config (a
 * file a hostile agent or build must never get to choose) would otherwise run code at every sync.
 */
const NO_PROGRAMS: [string, string][] = [['core.fsmonitor', 'false']];

/** The environment for git, without what would point it elsewhere than where it runs or make it run programs. */
export function gitEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of REPOSITORY_VARIABLES) delete env[name];
  // GIT_CONFIG_COUNT settings outrank every config file; they replace any the caller had.
  env.GIT_CONFIG_COUNT = String(NO_PROGRAMS.length);
  NO_PROGRAMS.forEach(([key, value], i) => {
    env[`GIT_CONFIG_KEY_${i}`] = key;
    env[`GIT_CONFIG_VALUE_${i}`] = value;
  });
  return env;
}

/** git's stdout, or null when `dir` is in no work tree. */
function git(dir: string, args: string[], input?: Buffer): Promise<Buffer | null> {
  const env = gitEnv();
  return new Promise((resolve, reject) => {
    const child = execFile(
      'git',
      // check-ignore takes paths, which it refuses to read as literal pathspecs.
      [...(args[0] === 'check-ignore' ? [] : ['--literal-pathspecs']), '--no-optional-locks', ...args],
      { cwd: dir, env, encoding: 'buffer', maxBuffer: MAX_LISTING_BYTES },
      (err, stdout, stderr) => {
        const message = stderr.toString('utf8').trim();
        // check-ignore exits 1, saying nothing, when no path is ignored.
        if (!err || (args[0] === 'check-ignore' && err.code === 1 && message === '')) return resolve(stdout);
        if (/not a git repository/i.test(message)) return resolve(null);
        reject(new Error(`git ${args.slice(0, 2).join(' ')} in ${dir} failed, so the files to sync are unknown: ${message || err.message}`));
      },
    );
    child.stdin!.on('error', () => undefined); // EPIPE if git exits early; its status says why
    child.stdin!.end(input);
  });
}
