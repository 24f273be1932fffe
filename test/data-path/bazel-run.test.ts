/**
 * `bazel run` through RBS with real parts only (stock client, proxy, agent, Bazel server, rsync):
 * on this machine from the fetched, checked program, or on the agent through the run relay.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { useStack } from '../harness/stack';
import { waitFor } from '../harness/wait';
import { type BazelWorkspace, isAlive, remoteOf, workspaceOfNewUser, writeFiles } from './fixture';

jest.setTimeout(180_000);

const stack = useStack();
let ws: BazelWorkspace;

beforeAll(async () => {
  ws = await workspaceOfNewUser(stack(), 'runner');
  writeFiles(ws.workspace, {
    'run/BUILD': [
      'sh_binary(name = "echo", srcs = ["echo.sh"], data = ["data.txt"])',
      'sh_binary(name = "sleeper", srcs = ["sleeper.sh"])',
      // A runfile that is a link out of everything, as build code can make one.
      'genrule(name = "escape", outs = ["escape.txt"], cmd = "ln -s /etc/passwd $@")',
      'sh_binary(name = "planted", srcs = ["planted.sh"], data = [":escape"])',
      '',
    ].join('\n'),
    // Everything a run must get right, on one line each; exits 7.
    'run/echo.sh': [
      '#!/bin/sh',
      'for arg in "$@"; do echo "arg=[$arg]"; done',
      'echo "stdin=[$(cat)]"',
      'echo "workspace=$BUILD_WORKSPACE_DIRECTORY"',
      'echo "working=$BUILD_WORKING_DIRECTORY"',
      'echo "data=$(cat run/data.txt)"',
      'echo "pwd=$(pwd)"',
      'exit 7',
      '',
    ].join('\n'),
    'run/data.txt': 'runfile\n',
    'run/planted.sh': `#!/bin/sh\ntouch ${path.join(ws.root, 'planted-ran')}\n`,
    'run/sleeper.sh': `#!/bin/sh\necho $$ > "$1"\nexec sleep ${ws.sleepSeconds}\n`,
  });
});
afterAll(() => ws.destroy());

/** The stock client's `bazel run`, from `cwd` (under the workspace), with `stdin` and RBS_RUN. */
function bazelRun(args: string[], { stdin = '', runMode = '', cwd = ws.workspace } = {}) {
  const argv = [`--output_base=${ws.outputBase}`, `--server_javabase=${ws.javabase}`, 'run', ...ws.buildOptions, ...args];
  const child = spawn('/usr/bin/bazel', argv, { cwd, env: { ...ws.env, RBS_RUN: runMode }, stdio: 'pipe' });
  child.stdin.end(stdin);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { child, done };
}

/** What //run:echo prints, run with `a 'b c'` and stdin `typed` from <workspace>/run. */
const echoed = (workspace: string, outputBase: string) =>
  [
    'arg=[a]',
    'arg=[b c]',
    'stdin=[typed]',
    `workspace=${workspace}`,
    `working=${path.join(workspace, 'run')}`,
    'data=runfile',
    `pwd=${path.join(outputBase, 'execroot/__main__/bazel-out/k8-fastbuild/bin/run/echo.runfiles/__main__')}`,
    '',
  ].join('\n');

it('runs on the laptop (same OS and architecture) from the fetched program and runfiles, with laptop paths', async () => {
  const run = await bazelRun(['//run:echo', '--', 'a', 'b c'], { stdin: 'typed', cwd: path.join(ws.workspace, 'run') }).done;
  expect(run.stdout).toBe(echoed(ws.workspace, ws.outputBase));
  expect(run.code).toBe(7);
});

it('runs remotely when asked: arguments, stdin, exit code and the agent’s paths', async () => {
  const run = await bazelRun(['//run:echo', '--', 'a', 'b c'], { stdin: 'typed', runMode: 'remote', cwd: path.join(ws.workspace, 'run') }).done;
  const { workspace, outputBase } = await remoteOf(stack(), ws);
  expect(run.stderr).toContain('RBS: running on the agent');
  expect(run.stdout).toBe(echoed(workspace, outputBase));
  expect(run.code).toBe(7);
});

it('a test target runs on the agent, inside Bazel’s test setup, saying why', async () => {
  const run = await bazelRun(['//main:hello-test']).done;
  expect(run.stderr).toContain('RBS: running on the agent: //main:hello-test is a test');
  expect(run.code).toBe(0);
});

it('--script_path is refused before the command leaves, naming the flag', async () => {
  const script = path.join(ws.root, 'run.sh');
  const run = await bazelRun([`--script_path=${script}`, '//run:echo']).done;
  expect(run.stderr).toContain('`bazel run --script_path` is not supported');
  expect(run.code).toBe(2);
  expect(fs.existsSync(script)).toBe(false);
});

it('a runfile that build code made a link out of everything is, on the laptop, no link out of the output base', async () => {
  const run = await bazelRun(['//run:planted']).done;
  expect(run.code).toBe(0);
  const runfiles = path.join(ws.outputBase, 'execroot/__main__/bazel-out/k8-fastbuild/bin/run/planted.runfiles/__main__/run');
  expect(fs.realpathSync(path.join(runfiles, 'escape.txt')).startsWith(`${ws.outputBase}/`)).toBe(true);
  expect(fs.realpathSync(path.join(runfiles, 'planted')).startsWith(`${ws.outputBase}/`)).toBe(true);
  expect(fs.existsSync(path.join(ws.root, 'planted-ran'))).toBe(true); // the fetched program, and it alone
});

it('Ctrl-C during a remote run stops the remote program within 2 s', async () => {
  const pidFile = path.join(ws.root, 'sleeper.pid');
  const { child, done } = bazelRun(['//run:sleeper', '--', pidFile], { runMode: 'remote' });
  await waitFor(() => fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8').endsWith('\n'), 60_000, 'the remote program to start');
  const pid = Number(fs.readFileSync(pidFile, 'utf8'));
  // The script writes its pid, then execs sleep: on a busy machine, a moment passes in between.
  await waitFor(() => ws.sleepers().length > 0, 5_000, 'the remote program to exec sleep');
  expect(ws.sleepers()).toEqual([pid]);
  const interruptedAt = Date.now();
  child.kill('SIGINT'); // the client exec'd the relay: this is the relay's pid
  await waitFor(() => !isAlive(pid), 2000, 'the remote program to stop');
  expect(Date.now() - interruptedAt).toBeLessThan(2000);
  expect(await done).toMatchObject({ code: null, signal: 'SIGINT' }); // as the program ended, as it would locally
});
