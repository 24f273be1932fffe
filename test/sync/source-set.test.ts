/**
 * The exact source set, case by case: a workspace built with real git, synced by the proxy's
 * syncWorkspace to a real agent, and the agent's copy compared by content with what git itself
 * lists (`git ls-files --cached --others --exclude-standard`, asked again inside nested
 * repositories), plus .rbs.json's sync.include, minus its sync.exclude: nothing more, nothing less.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Fixture, startFixture, write } from './fixture';

let f: Fixture;
/** git's user-level configuration for this file: nothing of the machine's leaks in. */
let home: string;

beforeAll(async () => {
  f = await startFixture();
  home = fs.mkdtempSync(path.join(f.root, '..', 'rbs-srcset-home-'));
  Object.assign(process.env, {
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: path.join(home, 'gitconfig'),
    XDG_CONFIG_HOME: path.join(home, 'xdg'),
  });
});
afterAll(async () => {
  await f.stop();
  fs.rmSync(home, { recursive: true, force: true });
});
beforeEach(() => {
  f.reset();
  for (const made of ['.git', '.gitignore', 'other-repo']) fs.rmSync(path.join(f.root, made), { recursive: true, force: true });
  fs.rmSync(path.join(home, 'xdg'), { recursive: true, force: true });
  fs.writeFileSync(path.join(home, 'gitconfig'), '[user]\n\tname = t\n\temail = t@example.com\n[protocol "file"]\n\tallow = always\n');
});

function git(cwd: string, ...args: string[]): Buffer {
  // jest's process.env is a copy: without it here, git would not see this file's configuration.
  return execFileSync('git', args, { cwd, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
}

interface Case {
  /** Files committed (added with -f, so an ignore pattern does not stop them). */
  tracked?: Record<string, string>;
  /** Files written after the commit. */
  untracked?: Record<string, string>;
  /** More setup in the developer's workspace, after both. */
  setup?: (source: string) => void;
  /** Not a git work tree at all. */
  noGit?: boolean;
  /** The sync is refused with a message matching this. */
  refused?: RegExp;
}

const SRC = 'cc_library(name = "x")\n';

const CASES: Record<string, Case> = {
  'tracked files only': { tracked: { BUILD: SRC, 'a/b/c.cc': 'c', 'a/x.h': 'h' } },
  'untracked files git does not ignore are sent': { tracked: { BUILD: SRC }, untracked: { 'new.cc': 'n', 'd/e/f.txt': 'f' } },
  'an unanchored glob ignores at every depth': { tracked: { '.gitignore': '*.log\n' }, untracked: { 'a.log': '1', 'x/y/b.log': '2', 'x/y/b.txt': '3' } },
  'negation brings a file back': { tracked: { '.gitignore': '*.log\n!keep.log\n' }, untracked: { 'drop.log': '1', 'keep.log': '2', 'sub/keep.log': '3' } },
  'a leading slash anchors at the .gitignore': { tracked: { '.gitignore': '/out\n' }, untracked: { 'out/a': '1', 'sub/out/b': '2' } },
  'a middle slash anchors, so a deeper path of that name is kept (rsync dropped it)': {
    tracked: { '.gitignore': 'docs/out\n', 'sub/docs/out': 'tracked deeper' },
    untracked: { 'docs/out': 'ignored', 'other/docs/out': 'kept, untracked' },
  },
  'a nested .gitignore applies below it only': {
    tracked: { 'pkg/.gitignore': '*.gen\n' },
    untracked: { 'pkg/a.gen': '1', 'pkg/deep/b.gen': '2', 'c.gen': '3' },
  },
  'a nested .gitignore negates its parent': {
    tracked: { '.gitignore': '*.dat\n', 'keep/.gitignore': '!*.dat\n' },
    untracked: { 'x.dat': '1', 'keep/y.dat': '2' },
  },
  'a tracked file matching an ignore pattern is still sent': {
    tracked: { '.gitignore': '*.cfg\n', 'app.cfg': 'tracked' },
    untracked: { 'other.cfg': 'ignored' },
  },
  'a tracked file inside an ignored directory is sent, its siblings are not': {
    tracked: { '.gitignore': 'build/\n', 'build/keep.txt': 'tracked' },
    untracked: { 'build/junk.o': 'ignored', 'build/deep/junk.o': 'ignored' },
  },
  '** matches any number of directories': {
    tracked: { '.gitignore': '**/gen/*.txt\n' },
    untracked: { 'gen/a.txt': '1', 'x/y/gen/b.txt': '2', 'x/gen/c.cc': '3' },
  },
  'a/**/b matches zero or more directories between': { tracked: { '.gitignore': 'a/**/b\n' }, untracked: { 'a/b': '1', 'a/x/y/b': '2', 'c/a/b': '3' } },
  'dir/** ignores everything inside': { tracked: { '.gitignore': 'cache/**\n' }, untracked: { 'cache/a': '1', 'cache/b/c': '2', 'x/cache/d': '3' } },
  'a directory-only pattern leaves a file of that name': { tracked: { '.gitignore': 'tmp/\n' }, untracked: { 'tmp/a': '1', 'sub/tmp': 'a file named tmp' } },
  'ignore everything but C sources': { tracked: { '.gitignore': '*\n!*/\n!*.c\n' }, untracked: { 'a.c': '1', 'a.o': '2', 'd/b.c': '3', 'd/b.h': '4' } },
  '.git/info/exclude': {
    tracked: { BUILD: SRC },
    untracked: { 'local.txt': 'excluded', 'kept.txt': 'k' },
    setup: (src) => fs.appendFileSync(path.join(src, '.git', 'info', 'exclude'), 'local.txt\n'),
  },
  "core.excludesFile in the repository's config": {
    untracked: { 'a.swp': 'excluded', 'a.txt': 'kept' },
    setup: (src) => {
      fs.writeFileSync(path.join(home, 'repo-excludes'), '*.swp\n');
      git(src, 'config', 'core.excludesFile', path.join(home, 'repo-excludes'));
    },
  },
  'core.excludesFile in the global config': {
    untracked: { '.idea/x.xml': 'excluded', 'a.txt': 'kept' },
    setup: () => {
      fs.writeFileSync(path.join(home, 'global-excludes'), '.idea/\n');
      fs.appendFileSync(path.join(home, 'gitconfig'), `[core]\n\texcludesFile = ${path.join(home, 'global-excludes')}\n`);
    },
  },
  'the default global excludes file under XDG_CONFIG_HOME': {
    untracked: { '.DS_Store': 'excluded', 'a.txt': 'kept' },
    setup: () => write(path.join(home, 'xdg'), { 'git/ignore': '.DS_Store\n' }),
  },
  'escaped ! and # in patterns': { tracked: { '.gitignore': '\\!bang\n\\#hash\n' }, untracked: { '!bang': '1', '#hash': '2', bang: '3', hash: '4' } },
  'names with rsync wildcards and backslashes': {
    tracked: { '.gitignore': '*.tmp\n', '[a]*?.txt': 'kept' },
    untracked: { '[a]*?.tmp': 'ignored', 'back\\slash.tmp': 'ignored', 'back\\slash.txt': 'kept', 'star*/x.txt': 'kept' },
  },
  'names that look like rsync rules cannot widen or narrow the set': {
    tracked: { '.gitignore': '*.o\n' },
    untracked: { '+ keep.o': 'ignored', '- drop.txt': 'kept', '***.o': 'ignored', ';x.o': 'ignored', '#y.txt': 'kept', 'merge, x.txt': 'kept' },
  },
  'names with spaces, and trailing spaces that .gitignore strips': {
    tracked: { '.gitignore': 'with space.o\ntrailing  \n' },
    untracked: { 'with space.o': 'ignored', trailing: 'ignored', 'a b/c d.txt': 'kept' },
  },
  'names with a newline or bytes that are not UTF-8': {
    tracked: { '.gitignore': '*.o\n' },
    setup: (src) => {
      fs.writeFileSync(path.join(src, 'new\nline.txt'), 'kept');
      fs.writeFileSync(path.join(src, 'new\nline.o'), 'ignored');
      fs.writeFileSync(Buffer.concat([Buffer.from(`${src}/latin`), Buffer.of(0xe9), Buffer.from('.txt')]), 'kept');
      fs.writeFileSync(Buffer.concat([Buffer.from(`${src}/latin`), Buffer.of(0xe9), Buffer.from('.o')]), 'ignored');
    },
  },
  'the executable bit travels': { tracked: { 'run.sh': '#!/bin/sh\n' }, setup: (src) => fs.chmodSync(path.join(src, 'run.sh'), 0o755) },
  'symlinks inside the workspace arrive as symlinks': {
    tracked: { 'data/real.txt': 'r', 'lib/x.h': 'h' },
    setup: (src) => {
      fs.symlinkSync('data/real.txt', path.join(src, 'alias.txt'));
      fs.symlinkSync('../lib', path.join(src, 'data', 'lib-dir'));
      fs.symlinkSync('nowhere', path.join(src, 'dangling-inside')); // dangling here and there alike
      git(src, 'add', 'alias.txt');
    },
  },
  'an absolute symlink out of the workspace is refused, named': {
    tracked: { BUILD: SRC },
    setup: (src) => fs.symlinkSync('/etc/hostname', path.join(src, 'host.txt')),
    refused: /host\.txt -> \/etc\/hostname.*sync\.exclude/s,
  },
  'a relative symlink climbing out is refused, named': {
    setup: (src) => {
      fs.mkdirSync(path.join(src, 'a'));
      fs.symlinkSync('../../canary', path.join(src, 'a', 'up'));
      git(src, 'add', 'a/up');
    },
    refused: /a\/up -> \.\.\/\.\.\/canary/,
  },
  'a dangling symlink out of the workspace is refused as dangling': {
    setup: (src) => fs.symlinkSync('/no/such/file', path.join(src, 'gone')),
    refused: /gone -> \/no\/such\/file \(dangling\)/,
  },
  'a symlink out that git ignores, or sync.exclude names, is not sent and not refused': {
    tracked: { '.gitignore': '/venv\n', '.rbs.json': '{"sync": {"exclude": ["tools/sdk"]}}' },
    setup: (src) => {
      fs.symlinkSync('/usr', path.join(src, 'venv'));
      fs.mkdirSync(path.join(src, 'tools'));
      fs.symlinkSync('/opt', path.join(src, 'tools', 'sdk'));
    },
  },
  'a .bazelignore directory (a local_repository) is sent': {
    tracked: {
      '.bazelignore': 'third_party/dep\n',
      WORKSPACE: 'local_repository(name = "dep", path = "third_party/dep")\n',
      'third_party/dep/WORKSPACE': '',
      'third_party/dep/BUILD': SRC,
    },
  },
  '.git and the top-level bazel-* links stay home; a deeper bazel-* is a source': {
    tracked: { BUILD: SRC, 'pkg/bazel-data.txt': 'a source' },
    setup: (src) => {
      fs.symlinkSync(f.canary, path.join(src, 'bazel-out'));
      fs.symlinkSync(src, path.join(src, 'bazel-source'));
    },
  },
  'sync.include sends one ignored file out of an ignored directory': {
    tracked: { '.gitignore': 'gen/\n', '.rbs.json': '{"sync": {"include": ["gen/sub/config.h"]}}' },
    untracked: { 'gen/sub/config.h': 'needed', 'gen/sub/other.o': 'not', 'gen/top.o': 'not' },
  },
  'sync.include sends a whole ignored directory, and an ignored file': {
    tracked: { '.gitignore': '*.json\nassets/\n', '.rbs.json': '{"sync": {"include": ["assets", "conf/app.json"]}}' },
    untracked: { 'assets/a.png': 'a', 'assets/x/b.json': 'b', 'conf/app.json': 'c', 'conf/other.json': 'd' },
  },
  'sync.exclude keeps tracked paths home': {
    tracked: { '.rbs.json': '{"sync": {"exclude": ["big", "notes.txt"]}}', 'big/data.bin': 'x', 'notes.txt': 'n', 'src/a.cc': 'a' },
  },
  'outside git everything is sent, .gitignore or not': {
    noGit: true,
    untracked: { '.gitignore': '*.o\n', 'a.o': 'sent', '.bazelignore': 'dep\n', 'dep/x': 'sent', 'b/c.txt': 'c' },
    setup: (src) => fs.symlinkSync(src, path.join(src, 'bazel-src')),
  },
  'a nested repository is read by its own rules': {
    tracked: { '.gitignore': '*.log\n' },
    setup: (src) => {
      write(src, {
        'vendor/lib/.gitignore': '*.o\n',
        'vendor/lib/a.c': 'a',
        'vendor/lib/a.o': 'ignored',
        'vendor/lib/b.log': 'kept: the outer rules stop at the nested repository',
      });
      git(path.join(src, 'vendor', 'lib'), 'init', '-q');
    },
  },
  'a submodule is read by its own rules': {
    tracked: { BUILD: SRC },
    setup: (src) => {
      const other = path.join(f.root, 'other-repo');
      fs.rmSync(other, { recursive: true, force: true });
      write(other, { '.gitignore': 'out/\n', 'lib.c': 'l' });
      git(other, 'init', '-q');
      git(other, 'add', '-A');
      git(other, 'commit', '-qm', 'other');
      git(src, 'submodule', 'add', '-q', other, 'third_party/other');
      write(src, { 'third_party/other/out/x.o': 'ignored in the submodule', 'third_party/other/new.c': 'untracked in the submodule' });
    },
  },
  'a workspace below the top of a repository follows the rules above it': {
    setup: (src) => {
      fs.rmSync(path.join(src, '.git'), { recursive: true });
      git(f.root, 'init', '-q');
      fs.writeFileSync(path.join(f.root, '.gitignore'), '*.pyc\n');
      write(src, { 'a.py': 'a', 'a.pyc': 'ignored by the parent' });
    },
  },
};

test.each(Object.entries(CASES))('%s', async (_name, c) => {
  const src = f.source;
  if (!c.noGit) git(src, 'init', '-q');
  if (c.tracked) {
    write(src, c.tracked);
    git(src, 'add', '-f', ...Object.keys(c.tracked));
    git(src, 'commit', '-qm', 'tracked');
  }
  write(src, c.untracked ?? {});
  c.setup?.(src);
  if (c.refused) {
    await expect(f.sync()).rejects.toThrow(c.refused);
    return;
  }
  await f.sync();
  expect(contentOf(f.workspace, filesUnder(f.workspace))).toEqual(contentOf(src, expectedSet(src)));
});

test("top-level links as Bazel makes them into the laptop's execroot stay home, whatever --symlink_prefix named them; other links out are still refused", async () => {
  git(f.source, 'init', '-q');
  write(f.source, { BUILD: SRC, 'pkg/a.cc': 'a' });
  const outputBase = path.join(f.root, 'output-base-josé'); // not ASCII: compared as bytes
  fs.mkdirSync(path.join(outputBase, 'execroot', '__main__', 'bazel-out'), { recursive: true });
  fs.symlinkSync(path.join(outputBase, 'execroot', '__main__', 'bazel-out'), path.join(f.source, 'cl-out'));
  fs.symlinkSync(path.join(outputBase, 'execroot', '__main__'), path.join(f.source, 'cl-src'));
  fs.symlinkSync(path.join(outputBase, 'execroot', 'gone'), path.join(f.source, 'cl-testlogs')); // dangling, alike
  try {
    await f.sync({ outputBase });
    expect(filesUnder(f.workspace).map(String).sort()).toEqual(['BUILD', 'pkg/a.cc']);
    // Each of these is judged as ever: the output base unknown, a link below the top, a relative one, a link elsewhere.
    await expect(f.sync()).rejects.toThrow(/3 symlink\(s\) .* point outside it/);
    const refused = async (link: string, target: string) => {
      fs.symlinkSync(target, path.join(f.source, link));
      await expect(f.sync({ outputBase })).rejects.toThrow(`${link} -> ${target}`);
      fs.unlinkSync(path.join(f.source, link));
    };
    await refused('pkg/cl-out', path.join(outputBase, 'execroot'));
    await refused('via-out', 'cl-out/../../..');
    await refused('cl-bin', f.canary);
    // Local Bazel reads through a link into the output base that is not into its execroot, or one in it that Bazel does not make.
    await refused('mine', path.join(outputBase, 'mine'));
    await refused('gen', path.join(outputBase, 'execroot', '__main__', 'bazel-out', 'k8-fastbuild', 'bin', 'gen'));
    await refused('tree', path.join(outputBase, 'execroot', '__main__', 'pkg'));
    await refused('climbs', `${outputBase}/execroot/../../elsewhere`);
  } finally {
    fs.rmSync(outputBase, { recursive: true, force: true });
  }
});

test('a sync of changed paths asks git about them: an ignored new file stays home, an included one goes', async () => {
  git(f.source, 'init', '-q');
  write(f.source, { '.gitignore': '*.o\ngen/\n', '.rbs.json': '{"sync": {"include": ["gen/config.h"]}}', 'a.c': 'a' });
  let last = await f.sync();
  const syncChanged = async (changed: string[]) => (last = await f.sync({ changed, baseSyncId: last.syncId }));
  write(f.source, { 'b.o': 'ignored', 'b.c': 'b', 'gen/config.h': 'included', 'gen/x.o': 'ignored' });
  await syncChanged(['b.o', 'b.c', 'gen']);
  expect(contentOf(f.workspace, filesUnder(f.workspace))).toEqual(contentOf(f.source, expectedSet(f.source)));
  write(f.source, { 'c.o': 'ignored', 'c.c': 'c' }); // files only: git's patterns are asked first
  await syncChanged(['c.o']);
  await syncChanged(['c.c']);
  expect(contentOf(f.workspace, filesUnder(f.workspace))).toEqual(contentOf(f.source, expectedSet(f.source)));

  fs.symlinkSync('/etc', path.join(f.source, 'etc'));
  await expect(syncChanged(['etc'])).rejects.toThrow(/etc -> \/etc/);
});

test('a changed .git/info/exclude or .rbs.json makes the next sync a full one', async () => {
  git(f.source, 'init', '-q');
  write(f.source, { 'a.txt': 'a', 'b.txt': 'b' });
  const first = await f.sync();
  fs.appendFileSync(path.join(f.source, '.git', 'info', 'exclude'), 'b.txt\n');
  fs.rmSync(path.join(f.source, 'a.txt')); // only a full sync deletes it remotely
  const second = await f.sync({ changed: [], baseSyncId: first.syncId });
  expect(fs.existsSync(path.join(f.workspace, 'a.txt'))).toBe(false);

  write(f.source, { '.rbs.json': '{"sync": {"exclude": ["a.txt"]}}', 'c.txt': 'c' });
  await f.sync({ changed: [], baseSyncId: second.syncId });
  expect(fs.existsSync(path.join(f.workspace, 'c.txt'))).toBe(true);
});

test('a .git/config that names a program (core.fsmonitor) does not make a sync run it', async () => {
  git(f.source, 'init', '-q');
  const ran = path.join(f.source, '..', 'fsmonitor-ran');
  git(f.source, 'config', 'core.fsmonitor', `touch ${ran}; false`);
  write(f.source, { 'a.txt': 'a' });
  const first = await f.sync();
  write(f.source, { 'b.txt': 'b' });
  await f.sync({ changed: ['b.txt'], baseSyncId: first.syncId });
  expect(fs.existsSync(path.join(f.workspace, 'b.txt'))).toBe(true);
  expect(fs.existsSync(ran)).toBe(false);
});

test('a file that cannot be read fails the sync, naming it', async () => {
  git(f.source, 'init', '-q');
  write(f.source, { 'secret.txt': 's', 'ok.txt': 'o' });
  fs.chmodSync(path.join(f.source, 'secret.txt'), 0);
  if (process.getuid?.() === 0) {
    // root reads it anyway: then it must simply arrive
    await f.sync();
    expect(fs.readFileSync(path.join(f.workspace, 'secret.txt'), 'utf8')).toBe('s');
  } else await expect(f.sync()).rejects.toThrow(/secret\.txt.*Permission denied/s);
});

/** What must reach the agent: git's own listing (nested repositories asked in turn), with .rbs.json applied. */
function expectedSet(src: string): Buffer[] {
  const settings = fs.existsSync(path.join(src, '.rbs.json')) ? JSON.parse(fs.readFileSync(path.join(src, '.rbs.json'), 'utf8')).sync : {};
  const include: string[] = settings.include ?? [];
  const exclude: string[] = settings.exclude ?? [];
  const listed = (isGit(src) ? gitListing(src) : filesUnder(src)).filter((p) => !p.toString('latin1').startsWith('bazel-'));
  const all = [...new Set([...listed, ...include.flatMap((p) => filesUnder(src, p))].map((p) => p.toString('latin1')))].map((p) => Buffer.from(p, 'latin1'));
  const excluded = (p: Buffer) => exclude.some((e) => p.toString('latin1') === e || p.toString('latin1').startsWith(`${e}/`));
  return all.filter((p) => !excluded(p));
}

function isGit(dir: string): boolean {
  try {
    git(dir, 'rev-parse', '--is-inside-work-tree');
    return true;
  } catch {
    return false;
  }
}

function gitListing(dir: string, prefix = Buffer.alloc(0)): Buffer[] {
  const out: Buffer[] = [];
  for (const entry of split(git(dir, 'ls-files', '-z', '--cached', '--others', '--exclude-standard'))) {
    const name = entry.at(-1) === 0x2f ? entry.subarray(0, -1) : entry;
    const full = Buffer.concat([Buffer.from(`${dir}/`), name]);
    const stat = fs.lstatSync(full, { throwIfNoEntry: false });
    if (!stat) continue;
    const inner = Buffer.concat([prefix, name, Buffer.from('/')]);
    if (stat.isDirectory())
      out.push(...gitListing(full.toString(), inner)); // a nested repository or submodule
    else out.push(Buffer.concat([prefix, name]));
  }
  return out;
}

function split(listing: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (let end = listing.indexOf(0); end >= 0; start = end + 1, end = listing.indexOf(0, start)) out.push(listing.subarray(start, end));
  return out;
}

/** Files and symlinks under `dir` (or its `sub`), relative to `dir`, but .git. */
function filesUnder(dir: string, sub = ''): Buffer[] {
  const out: Buffer[] = [];
  const walk = (rel: Buffer) => {
    const full = Buffer.concat([Buffer.from(`${dir}/`), rel]);
    const stat = fs.lstatSync(full, { throwIfNoEntry: false });
    if (!stat) return;
    if (!stat.isDirectory()) return void out.push(rel);
    for (const name of fs.readdirSync(full, { encoding: 'buffer' })) {
      if (name.toString() !== '.git') walk(rel.length ? Buffer.concat([rel, Buffer.from('/'), name]) : name);
    }
  };
  walk(Buffer.from(sub));
  return out;
}

/** Each path's content: a symlink's target, or a file's exec bit and SHA-256. Keys are latin1, so any bytes fit. */
function contentOf(dir: string, files: Buffer[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const rel of files) {
    const full = Buffer.concat([Buffer.from(`${dir}/`), rel]);
    const stat = fs.lstatSync(full);
    out[rel.toString('latin1')] = stat.isSymbolicLink()
      ? `-> ${fs.readlinkSync(full, { encoding: 'buffer' }).toString('latin1')}`
      : `${stat.mode & 0o100 ? 'x' : '-'} ${createHash('sha256').update(fs.readFileSync(full)).digest('hex')}`;
  }
  return out;
}
