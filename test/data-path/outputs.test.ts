/**
 * Outputs on the laptop, with real parts only (stock client, proxy, agent, Bazel server, rsync):
 * after a build the requested targets' outputs are in the laptop's output base, reached through
 * links like local Bazel's; after a test, each test's test.log and test.xml; a no-op build moves
 * no output bytes; a fetch that cannot land fails the command, naming the path.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { useStack } from '../harness/stack';
import { type BazelWorkspace, remoteOf, workspaceOfNewUser } from './fixture';

jest.setTimeout(180_000);

const stack = useStack();
let ws: BazelWorkspace;

beforeAll(async () => {
  ws = await workspaceOfNewUser(stack(), 'outputs');
});
afterAll(() => ws.destroy());

const fetched = () => [...(ws.serverFile('jvm.out') ?? '').matchAll(/fetched (\d+) files \((\d+) bytes\)/g)].map((m) => [Number(m[1]), Number(m[2])]);
const bin = (...parts: string[]) => path.join(ws.outputBase, 'execroot', '__main__', 'bazel-out', 'k8-fastbuild', 'bin', ...parts);

it('after build, bazel-bin/<target> runs on the laptop, from the laptop output base; a no-op build moves no output bytes', async () => {
  const build = await ws.bazel(['build', ...ws.buildOptions, '//main:hello-world', '//:gen']);
  expect(build).toMatchObject({ code: 0 });
  const links = Object.fromEntries(
    ['bazel-bin', 'bazel-out', 'bazel-testlogs', 'bazel-ws'].map((name) => [name, fs.readlinkSync(path.join(ws.workspace, name))]),
  );
  const execroot = path.join(ws.outputBase, 'execroot', '__main__');
  expect(links).toEqual({
    'bazel-bin': path.join(execroot, 'bazel-out', 'k8-fastbuild', 'bin'),
    'bazel-out': path.join(execroot, 'bazel-out'),
    'bazel-testlogs': path.join(execroot, 'bazel-out', 'k8-fastbuild', 'testlogs'),
    'bazel-ws': execroot,
  });
  expect(execFileSync(path.join(ws.workspace, 'bazel-bin', 'main', 'hello-world'), ['laptop'], { encoding: 'utf8' })).toBe('Hello laptop\n');
  expect(fs.readFileSync(path.join(ws.workspace, 'bazel-bin', 'gen.txt'), 'utf8')).toBe('hello\n');
  const size = fs.statSync(bin('main', 'hello-world')).size + fs.statSync(bin('gen.txt')).size;
  expect(fetched()).toEqual([[2, size]]);

  expect((await ws.bazel(['build', ...ws.buildOptions, '//main:hello-world', '//:gen'])).code).toBe(0);
  expect(fetched()).toEqual([
    [2, size],
    [0, 0],
  ]);
});

it('after test, each test has its test.log and test.xml under bazel-testlogs (a cc_test and an sh_test)', async () => {
  expect((await ws.bazel(['test', ...ws.buildOptions, '//main:hello-test', '//:pass'])).code).toBe(0);
  const { outputBase } = await remoteOf(stack(), ws);
  for (const test of ['main/hello-test', 'pass']) {
    for (const file of ['test.log', 'test.xml']) {
      const laptop = path.join(ws.workspace, 'bazel-testlogs', test, file);
      const agent = path.join(outputBase, 'execroot', '__main__', 'bazel-out', 'k8-fastbuild', 'testlogs', test, file);
      expect(fs.realpathSync(laptop).startsWith(ws.outputBase)).toBe(true);
      expect(fs.readFileSync(laptop, 'utf8')).toBe(fs.readFileSync(agent, 'utf8'));
    }
  }
});

it('.rbs.json outputs: none removes the stale copy and fetches nothing; all fetches the whole bazel-out', async () => {
  const settings = path.join(ws.workspace, '.rbs.json');
  try {
    fs.writeFileSync(settings, '{"outputs": "none"}\n');
    fs.writeFileSync(path.join(ws.workspace, 'in.txt'), 'changed\n');
    expect((await ws.bazel(['build', ...ws.buildOptions, '//:gen'])).code).toBe(0);
    expect(fs.existsSync(bin('gen.txt'))).toBe(false); // it said hello: stale
    expect(fs.readlinkSync(path.join(ws.workspace, 'bazel-bin'))).toBe(bin());

    expect(fs.existsSync(bin('main', '_objs'))).toBe(false); // not a top-level output
    fs.writeFileSync(settings, '{"outputs": "all"}\n');
    expect((await ws.bazel(['build', ...ws.buildOptions, '//:gen'])).code).toBe(0);
    expect(fs.readFileSync(bin('gen.txt'), 'utf8')).toBe('changed\n');
    expect(fs.readdirSync(bin('main', '_objs', 'hello-world')).length).toBeGreaterThan(0);
  } finally {
    fs.rmSync(settings, { force: true });
  }
});

it('a fetch that cannot land fails the command, naming the path, and writes nothing through a planted link', async () => {
  const elsewhere = path.join(ws.root, 'elsewhere');
  fs.mkdirSync(elsewhere);
  fs.rmSync(bin('main'), { recursive: true, force: true });
  fs.symlinkSync(elsewhere, bin('main'));
  fs.appendFileSync(path.join(ws.workspace, 'main', 'hello-world.cc'), '// changed\n');
  const build = await ws.bazel(['build', ...ws.buildOptions, '//main:hello-world']);
  expect(build.code).toBe(36);
  expect(build.stderr).toContain(
    `RBS: outputs did not reach this machine: refused to fetch execroot/__main__/bazel-out/k8-fastbuild/bin/main/hello-world: ${bin('main')} is not a directory`,
  );
  expect(fs.readdirSync(elsewhere)).toEqual([]);
});

/** The links in `dir` into `base`, by name (the one named after the directory as `<prefix>WS`), with their targets relative to it. */
function linksInto(dir: string, base: string): Record<string, string> {
  return Object.fromEntries(
    fs.readdirSync(dir).flatMap((name) => {
      if (!fs.lstatSync(path.join(dir, name)).isSymbolicLink()) return [];
      const target = fs.readlinkSync(path.join(dir, name));
      const role = name.endsWith(`-${path.basename(dir)}`) ? `${name.slice(0, -path.basename(dir).length)}WS` : name;
      return target === base || target.startsWith(`${base}/`) ? [[role, path.relative(base, target)]] : [];
    }),
  );
}

/** The laptop's convenience links, which must be those the remote Bazel made in its copy; returned. */
async function sameLinks(): Promise<Record<string, string>> {
  const remote = await remoteOf(stack(), ws);
  const laptop = linksInto(ws.workspace, ws.outputBase);
  expect(laptop).toEqual(linksInto(remote.workspace, remote.outputBase));
  return laptop;
}

async function succeeds(args: string[]): Promise<void> {
  const result = await ws.bazel(args);
  if (result.code !== 0) throw new Error(`bazel ${args.join(' ')} exited with ${result.code}:\n${result.stderr}`);
}

it('with a --symlink_prefix, the laptop gets the links the remote Bazel made: the prefixed ones and bazel-out beside them; a clean removes them all', async () => {
  fs.rmSync(path.join(ws.workspace, 'bazel-out'), { force: true });
  await succeeds(['build', ...ws.buildOptions, '--symlink_prefix=cl-', '//:gen']);
  expect(Object.keys(await sameLinks())).toEqual(expect.arrayContaining(['cl-bin', 'cl-out', 'cl-testlogs', 'cl-WS', 'bazel-out']));

  // Told not to make bazel-out, Bazel leaves it as it was (here: gone).
  const remote = await remoteOf(stack(), ws);
  for (const dir of [ws.workspace, remote.workspace]) fs.rmSync(path.join(dir, 'bazel-out'));
  await succeeds(['build', ...ws.buildOptions, '--symlink_prefix=cl-', '--experimental_no_product_name_out_symlink', '//:gen']);
  expect(await sameLinks()).not.toHaveProperty('bazel-out');

  // The agent's Bazel rewriting its links is not drift: the next sync is not a full one.
  const fullSyncs = () => (ws.serverFile('jvm.out') ?? '').split('syncing everything').length;
  const before = fullSyncs();
  await succeeds(['build', ...ws.buildOptions, '--symlink_prefix=cl-', '//:gen']);
  fs.writeFileSync(path.join(ws.workspace, 'in.txt'), 'edited\n');
  await succeeds(['build', ...ws.buildOptions, '--symlink_prefix=cl-', '//:gen']);
  expect(fullSyncs()).toBe(before);
  // A clean removes bazel-out whatever the flag; with the prefix in .bazelrc, it reads it there.
  await succeeds(['clean', '--symlink_prefix=cl-', '--experimental_no_product_name_out_symlink']);
  expect(Object.keys(await sameLinks()).filter((name) => name.startsWith('cl-') || name === 'bazel-out')).toEqual([]);
  const bazelrc = path.join(ws.workspace, '.bazelrc');
  const rc = fs.existsSync(bazelrc) ? fs.readFileSync(bazelrc) : null;
  try {
    fs.appendFileSync(bazelrc, 'build --symlink_prefix=rc-\n');
    await succeeds(['build', ...ws.buildOptions, '//:gen']);
    expect(Object.keys(await sameLinks())).toEqual(expect.arrayContaining(['rc-bin', 'bazel-out']));
    await succeeds(['clean']);
    expect(Object.keys(await sameLinks()).filter((name) => name.startsWith('rc-') || name === 'bazel-out')).toEqual([]);
  } finally {
    if (rc) fs.writeFileSync(bazelrc, rc);
    else fs.rmSync(bazelrc);
  }
});

it('bazel-genfiles, kept or merged, and --experimental_convenience_symlinks as local Bazel has them', async () => {
  const genfiles = ['build', ...ws.buildOptions, '--noincompatible_skip_genfiles_symlink'];
  await succeeds([...genfiles, '//:gen']);
  expect(await sameLinks()).toMatchObject({ 'bazel-genfiles': 'execroot/__main__/bazel-out/k8-fastbuild/bin' });
  await succeeds([...genfiles, '--noincompatible_merge_genfiles_directory', '//:gen']);
  expect(await sameLinks()).toMatchObject({ 'bazel-genfiles': 'execroot/__main__/bazel-out/k8-fastbuild/genfiles' });
  await succeeds(['build', ...ws.buildOptions, '//:gen']); // skipped, as by default: removed
  expect(await sameLinks()).not.toHaveProperty('bazel-genfiles');

  // ignore touches no link, here one gone on both sides; clean removes them all.
  const remote = await remoteOf(stack(), ws);
  for (const dir of [ws.workspace, remote.workspace]) fs.rmSync(path.join(dir, 'bazel-bin'));
  await succeeds(['build', ...ws.buildOptions, '--experimental_convenience_symlinks=ignore', '//:gen']);
  expect(await sameLinks()).not.toHaveProperty('bazel-bin');
  await succeeds(['build', ...ws.buildOptions, '--experimental_convenience_symlinks=clean', '//:gen']);
  expect(await sameLinks()).toEqual({});
  await succeeds(['build', ...ws.buildOptions, '//:gen']);
  expect(Object.keys(await sameLinks()).sort()).toEqual(['bazel-WS', 'bazel-bin', 'bazel-out', 'bazel-testlogs']);
});

it('a command that ends before Bazel makes any link, on a fresh agent, leaves the laptop links a local build made', async () => {
  const fresh = await workspaceOfNewUser(stack(), 'fresh');
  try {
    const bin = path.join(fresh.outputBase, 'execroot', '__main__', 'bazel-out', 'k8-fastbuild', 'bin');
    fs.symlinkSync(bin, path.join(fresh.workspace, 'bazel-bin'));
    const result = await fresh.bazel(['build', '--no_such_option', '//:gen']);
    expect(result.code).toBe(2);
    expect(fs.readlinkSync(path.join(fresh.workspace, 'bazel-bin'))).toBe(bin);
  } finally {
    fresh.destroy();
  }
});
