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

it('with a --symlink_prefix, the laptop gets the links the remote Bazel made: the prefixed ones and bazel-out beside them; a clean removes them all', async () => {
  /** The links in `dir` into `base`, by name (the one named after the directory as `<prefix>WS`), with their targets relative to it. */
  const linksInto = (dir: string, base: string) =>
    Object.fromEntries(
      fs.readdirSync(dir).flatMap((name) => {
        if (!fs.lstatSync(path.join(dir, name)).isSymbolicLink()) return [];
        const target = fs.readlinkSync(path.join(dir, name));
        const role = name.endsWith(`-${path.basename(dir)}`) ? `${name.slice(0, -path.basename(dir).length)}WS` : name;
        return target === base || target.startsWith(`${base}/`) ? [[role, path.relative(base, target)]] : [];
      }),
    );
  const succeeds = async (args: string[]) => {
    const result = await ws.bazel(args);
    if (result.code !== 0) throw new Error(`bazel ${args.join(' ')} exited with ${result.code}:\n${result.stderr}`);
  };
  const same = () => expect(linksInto(ws.workspace, ws.outputBase)).toEqual(linksInto(remote.workspace, remote.outputBase));
  fs.rmSync(path.join(ws.workspace, 'bazel-out'), { force: true });
  await succeeds(['build', ...ws.buildOptions, '--symlink_prefix=cl-', '//:gen']);
  const remote = await remoteOf(stack(), ws);
  same();
  expect(Object.keys(linksInto(ws.workspace, ws.outputBase))).toEqual(expect.arrayContaining(['cl-bin', 'cl-out', 'cl-testlogs', 'cl-WS', 'bazel-out']));
  const made = ['cl-bin', 'cl-out', 'cl-testlogs', `cl-${path.basename(ws.workspace)}`, 'bazel-out'];

  // Told not to make bazel-out, Bazel leaves it as it was (here: gone).
  for (const dir of [ws.workspace, remote.workspace]) fs.rmSync(path.join(dir, 'bazel-out'));
  const build = ['build', ...ws.buildOptions, '--symlink_prefix=cl-', '--experimental_no_product_name_out_symlink', '//:gen'];
  await succeeds(build);
  same();
  expect(fs.existsSync(path.join(ws.workspace, 'bazel-out'))).toBe(false);

  await succeeds(['build', ...ws.buildOptions, '--symlink_prefix=cl-', '//:gen']);
  await succeeds(['clean', '--symlink_prefix=cl-']);
  same();
  for (const name of made) expect(fs.existsSync(path.join(ws.workspace, name))).toBe(false);
});
