/**
 * A local `bazel run` as a compromised agent would shape it: whatever the RunTarget and the fetched
 * files say, only the fetched, checked program runs, with runfiles inside the laptop's output base
 * or workspace. The fetch is a FAKE (a copy from a directory standing in for the agent's output
 * base, symlinks kept as symlinks, as rsync does): the real one is covered by the data-path tests.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { RunTarget__Output } from '../../lib/run-target';
import type { OutputFile__Output } from '../../gen/proto/rbs/v1/OutputFile';
import { describeFile } from '../../services/agent/outputs';
import { type LocalRun, prepareLocalRun } from '../../services/proxy/local-run';

const BIN = 'execroot/__main__/bazel-out/k8-fastbuild/bin';
let root: string;
let agent: { outputBase: string; workspace: string };
let laptop: { outputBase: string; workspace: string };
let fetched: string[][];

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-local-run-'));
  agent = { outputBase: path.join(root, 'agent', 'output_base'), workspace: path.join(root, 'agent', 'workspace') };
  laptop = { outputBase: path.join(root, 'laptop', 'ob'), workspace: path.join(root, 'laptop', 'ws') };
  fetched = [];
  for (const dir of Object.values(agent).concat(Object.values(laptop))) fs.mkdirSync(dir, { recursive: true });
  fs.mkdirSync(path.join(laptop.workspace, 'run'));
  fs.writeFileSync(path.join(laptop.workspace, 'run', 'data.txt'), 'data\n');
  agentFile(`${BIN}/run/echo`, '#!/bin/sh\n', 0o755);
  manifest([
    ['__main__/run/echo', `${agent.outputBase}/${BIN}/run/echo`],
    ['__main__/run/data.txt', `${agent.workspace}/run/data.txt`],
  ]);
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

function agentFile(relative: string, content: string, mode = 0o644): void {
  fs.mkdirSync(path.dirname(path.join(agent.outputBase, relative)), { recursive: true });
  fs.writeFileSync(path.join(agent.outputBase, relative), content, { mode });
}

function manifest(entries: [string, string][]): void {
  agentFile(`${BIN}/run/echo.runfiles/MANIFEST`, entries.map(([name, target]) => `${name} ${target}\n`).join(''));
}

/** The FAKE fetch: copies what is named, symlinks as symlinks. */
async function fakeFetch(paths: string[]): Promise<void> {
  fetched.push(paths);
  for (const relative of paths) {
    const from = path.join(agent.outputBase, relative);
    const to = path.join(laptop.outputBase, relative);
    fs.mkdirSync(path.dirname(to), { recursive: true });
    fs.rmSync(to, { force: true });
    if (fs.lstatSync(from).isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(from), to);
    else {
      fs.copyFileSync(from, to);
      fs.chmodSync(to, fs.statSync(from).mode);
      execFileSync('touch', ['-r', from, to]); // the time to the nanosecond, as rsync --times
    }
  }
}

function run(target: Partial<RunTarget__Output> = {}): Promise<unknown> {
  const full: RunTarget__Output = {
    executable: `${BIN}/run/echo`,
    args: [Buffer.from('a'), Buffer.from('b c')],
    remoteOnlyReason: '',
    platform: process.platform,
    arch: process.arch,
    remoteRunId: 'id',
    files: [],
    ...agent,
    ...target,
  };
  const localRun: LocalRun = { target: full, ...laptop, clientCwd: path.join(laptop.workspace, 'run'), fetch: fakeFetch };
  return prepareLocalRun(localRun);
}

const runfiles = () => path.join(laptop.outputBase, BIN, 'run', 'echo.runfiles');

test('the program, its arguments and a runfiles tree with this machine’s paths', async () => {
  const exec = (await run()) as { workingDirectory: Buffer; argv: Buffer[]; environmentVariable: { name: Buffer; value: Buffer }[] };
  const binary = path.join(laptop.outputBase, BIN, 'run', 'echo');
  expect(exec.argv.map(String)).toEqual([binary, 'a', 'b c']);
  expect(String(exec.workingDirectory)).toBe(path.join(runfiles(), '__main__'));
  expect(Object.fromEntries(exec.environmentVariable.map(({ name, value }) => [String(name), String(value)]))).toEqual({
    BUILD_WORKSPACE_DIRECTORY: laptop.workspace,
    BUILD_WORKING_DIRECTORY: path.join(laptop.workspace, 'run'),
  });
  expect(fs.readlinkSync(path.join(runfiles(), '__main__', 'run', 'echo'))).toBe(binary);
  expect(fs.readFileSync(path.join(runfiles(), '__main__', 'run', 'data.txt'), 'utf8')).toBe('data\n');
  const rewritten = `__main__/run/echo ${binary}\n__main__/run/data.txt ${laptop.workspace}/run/data.txt\n`;
  expect(fs.readFileSync(path.join(runfiles(), 'MANIFEST'), 'utf8')).toBe(rewritten);
  expect(fs.readFileSync(`${runfiles()}_manifest`, 'utf8')).toBe(rewritten);
  expect(fetched).toEqual([[`${BIN}/run/echo`, `${BIN}/run/echo.runfiles/MANIFEST`]]);
});

test('what the laptop has as the agent describes it is not fetched again, and is checked all the same', async () => {
  const describe = async () =>
    (await Promise.all([`${BIN}/run/echo`, `${BIN}/run/echo.runfiles/MANIFEST`].map(describeFile(agent.outputBase)))).flat() as OutputFile__Output[];
  await run({ files: await describe() });
  fetched = [];
  await run({ files: await describe() });
  expect(fetched).toEqual([]);
  expect(fs.readlinkSync(path.join(runfiles(), '__main__', 'run', 'data.txt'))).toBe(path.join(laptop.workspace, 'run', 'data.txt'));

  // The agent's MANIFEST changed (a new stamp): fetched, and its new entry checked.
  manifest([['__main__/x', '/etc/passwd']]);
  await expect(run({ files: await describe() })).rejects.toThrow('the runfile /etc/passwd is neither');
  expect(fetched).toEqual([[`${BIN}/run/echo.runfiles/MANIFEST`]]);
});

test.each([
  ['a program outside the output base', { executable: '../../../bin/sh' }, 'is not a plain path inside the output base'],
  ['a program under .. inside', { executable: `${BIN}/../../../../etc/x` }, 'is not a plain path inside the output base'],
  ['a program not under execroot', { executable: 'external/x/bin' }, 'is not under execroot/<workspace name>/'],
])('refused before anything is fetched: %s', async (_what, target, message) => {
  await expect(run(target)).rejects.toThrow(message);
  expect(fetched).toEqual([]);
});

test('a program that is not executable is named', async () => {
  fs.chmodSync(path.join(agent.outputBase, BIN, 'run', 'echo'), 0o644);
  await expect(run()).rejects.toThrow(`the target's program ${path.join(laptop.outputBase, BIN, 'run', 'echo')} is not executable`);
});

test.each([
  ['right under it', '__main__/run/planted'],
  ['directories deeper', '__main__/run/b/c/planted'],
])('a runfile under another runfile’s link creates nothing through it in the workspace: %s', async (_what, name) => {
  manifest([
    ['__main__/run', `${agent.workspace}/run`],
    [name, `${agent.outputBase}/${BIN}/run/echo`],
  ]);
  await expect(run()).rejects.toThrow(`the runfile ${name} lies under another runfile's link`);
  expect(fs.readdirSync(path.join(laptop.workspace, 'run'))).toEqual(['data.txt']);
});

test('a runfile named MANIFEST cannot turn the tree’s MANIFEST into a link to a source, which the proxy would write', async () => {
  fs.writeFileSync(path.join(laptop.workspace, 'run', 'tool.sh'), 'echo safe\n');
  manifest([
    ['MANIFEST', `${agent.workspace}/run/tool.sh`],
    ['__main__/run/echo', `${agent.outputBase}/${BIN}/run/echo`],
  ]);
  await expect(run()).rejects.toThrow('names a runfile MANIFEST');
  expect(fs.readFileSync(path.join(laptop.workspace, 'run', 'tool.sh'), 'utf8')).toBe('echo safe\n');
});

test('files the proxy writes beside the tree replace a link planted there, never write through it', async () => {
  fs.writeFileSync(path.join(laptop.workspace, 'run', 'victim'), 'untouched\n');
  // A previous fetch left links where the proxy writes: into the runfiles tree, whose entry leads to a source.
  fs.mkdirSync(path.join(laptop.outputBase, BIN, 'run'), { recursive: true });
  fs.symlinkSync('echo.runfiles/__main__/run/victim', path.join(laptop.outputBase, BIN, 'run', 'echo.runfiles_manifest'));
  fs.symlinkSync(path.join(laptop.workspace, 'run', 'victim'), path.join(laptop.outputBase, BIN, 'run', 'echo.runfiles.rbs-agent-manifest.json'));
  manifest([
    ['__main__/run/victim', `${agent.workspace}/run/victim`],
    ['__main__/run/echo', `${agent.outputBase}/${BIN}/run/echo`],
  ]);
  await run();
  expect(fs.readFileSync(path.join(laptop.workspace, 'run', 'victim'), 'utf8')).toBe('untouched\n');
  for (const written of ['echo.runfiles_manifest', 'echo.runfiles.rbs-agent-manifest.json']) {
    expect(fs.lstatSync(path.join(laptop.outputBase, BIN, 'run', written)).isFile()).toBe(true);
  }
});

test('a fetched program that is a symlink is refused', async () => {
  fs.rmSync(path.join(agent.outputBase, BIN, 'run', 'echo'));
  fs.symlinkSync('/bin/sh', path.join(agent.outputBase, BIN, 'run', 'echo'));
  await expect(run()).rejects.toThrow('was not fetched as a file inside the output base');
});

test.each([
  [
    'a runfile outside the output base and the workspace',
    () => manifest([['__main__/x', '/etc/passwd']]),
    'the runfile /etc/passwd is neither an output nor a source',
  ],
  ['a runfile name with ..', () => manifest([['__main__/../../../x', `${agent.workspace}/run/data.txt`]]), 'is not a plain path inside the output base'],
  [
    'a fetched runfile whose link escapes',
    () => {
      fs.symlinkSync('/etc/passwd', path.join(agent.outputBase, BIN, 'run', 'evil'));
      manifest([['__main__/run/evil', `${agent.outputBase}/${BIN}/run/evil`]]);
    },
    `__main__/run/evil -> /`,
  ],
  ['a dangling runfile (a source missing here)', () => manifest([['__main__/gone.txt', `${agent.workspace}/gone.txt`]]), '__main__/gone.txt -> /'],
])('refused, and no runfiles tree is written: %s', async (_what, arrange, message) => {
  arrange();
  await expect(run()).rejects.toThrow(message);
  expect(fs.existsSync(path.join(runfiles(), '__main__'))).toBe(false);
});
