/**
 * BazelServer against the real Bazel 4.2.3 server, with requests shaped like the ones the real client
 * sends from a laptop whose workspace is /home/dev/proj (a path that does not exist here).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { RunRequest__Output } from '../../gen/proto/command_server/RunRequest';
import type { RunResponse__Output } from '../../gen/proto/command_server/RunResponse';
import { BazelServer } from '../../services/agent/bazel-server';
import { describeRun } from '../../services/agent/run-target';
import { bazelServersOn, isAlive } from '../data-path/fixture';
import type { ClientPaths } from '../../services/agent/run-request';

const LAPTOP: ClientPaths = { clientWorkspace: '/home/dev/proj', clientOutputBase: '/home/dev/.cache/bazel/_bazel_dev/0123abcd' };
const LAPTOP_PATH = '/home/dev/bin:/usr/bin:/bin';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-bazel-server-'));
const workspaceDir = path.join(root, 'ws');
const outputBase = path.join(root, 'ob');
const stubsDir = path.join(root, 'stubs');
const logFile = path.join(root, 'bazel-client.log');
const timings: Record<string, number> = {};

function writeFiles(dir: string, files: Record<string, string>): void {
  for (const [name, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), content, { mode: name.endsWith('.sh') ? 0o755 : 0o644 });
  }
}

/**
 * Test rules depend on three repositories Bazel 4.2.3 would download; offline, stubs forwarding to
 * the native rules stand in for them.
 */
const forward = (rules: string[]) => rules.map((rule) => `${rule} = native.${rule}\n`).join('');
const STUBS: Record<string, Record<string, string>> = {
  rules_cc: {
    WORKSPACE: '',
    BUILD: '',
    'cc/BUILD': '',
    'cc/defs.bzl': forward(['cc_binary', 'cc_import', 'cc_library', 'cc_test', 'cc_toolchain', 'cc_toolchain_suite', 'objc_import', 'objc_library']),
  },
  rules_java: {
    WORKSPACE: '',
    BUILD: '',
    'java/BUILD': '',
    'java/defs.bzl': forward([
      'java_binary',
      'java_import',
      'java_library',
      'java_plugin',
      'java_proto_library',
      'java_runtime',
      'java_test',
      'java_toolchain',
    ]),
  },
  remote_coverage_tools: {
    WORKSPACE: '',
    BUILD: 'package(default_visibility = ["//visibility:public"])\nfilegroup(name = "lcov_merger")\nfilegroup(name = "coverage_report_generator")\n',
  },
};

function writeWorkspace(): void {
  for (const [name, files] of Object.entries(STUBS)) writeFiles(path.join(stubsDir, name), files);
  writeFiles(workspaceDir, {
    WORKSPACE: '',
    'in.txt': 'hello\n',
    BUILD: [
      'genrule(name = "copy", srcs = ["in.txt"], outs = ["out.txt"], cmd = "sleep 1; cp $< $@")',
      'genrule(name = "slow", outs = ["slow.txt"], cmd = "sleep 30; touch $@")',
      'sh_test(name = "pass", srcs = ["pass.sh"])',
      'sh_test(name = "fail", srcs = ["fail.sh"])',
    ].join('\n'),
    'pass.sh': '#!/bin/sh\nexit 0\n',
    'fail.sh': '#!/bin/sh\nexit 1\n',
    'pkg/BUILD': 'genrule(name = "env", outs = ["env.txt"], cmd = "echo PATH=$$PATH > $@")',
  });
}

/**
 * What the real client sends, minus its rc-file expansion and most of its environment. The server
 * needs only the command and a client_description (without one it answers exit 36, "Invalid
 * RunRequest: no client description"); client_cwd and client_env are what make it the laptop's.
 */
function clientRequest(command: string, args: string[], { cwd = '', blockForLock = true } = {}): RunRequest__Output {
  const clientCwd = path.posix.join(LAPTOP.clientWorkspace, cwd);
  const overrides = Object.keys(STUBS).map((name) => `--override_repository=${name}=${path.join(stubsDir, name)}`);
  // A developer on this image passes --nosandbox_debug against /etc/bazel/bazelrc's --sandbox_debug.
  const buildOptions = ['build', 'test', 'run'].includes(command) ? ['--nosandbox_debug', ...overrides] : [];
  return {
    cookie: '',
    arg: [
      command,
      `--client_env=PATH=${LAPTOP_PATH}`,
      '--client_env=HOME=/home/dev',
      `--client_env=PWD=${clientCwd}`,
      `--client_cwd=${clientCwd}`,
      ...buildOptions,
      ...args,
    ].map((a) => Buffer.from(a)),
    blockForLock,
    clientDescription: 'pid=4242',
    invocationPolicy: '',
    startupOptions: [{ option: Buffer.from(`--output_base=${LAPTOP.clientOutputBase}`), source: Buffer.from('') }],
  };
}

interface Outcome {
  exitCode: number;
  stdout: string;
  stderr: string;
  responses: RunResponse__Output[];
  ms: number;
}

async function bazel(
  server: BazelServer,
  request: RunRequest__Output,
  signal = new AbortController().signal,
  onResponse?: (r: RunResponse__Output) => void,
): Promise<Outcome> {
  const responses: RunResponse__Output[] = [];
  const started = Date.now();
  await server.run(request, LAPTOP, (r) => (responses.push(r), onResponse?.(r)), signal);
  const last = responses.at(-1)!;
  expect(last.finished).toBe(true);
  const text = (pick: (r: RunResponse__Output) => Buffer) => Buffer.concat(responses.map(pick)).toString();
  return { exitCode: last.exitCode, stdout: text((r) => r.standardOutput), stderr: text((r) => r.standardError), responses, ms: Date.now() - started };
}

const serverPid = () => Number(fs.readFileSync(path.join(outputBase, 'server', 'server.pid.txt'), 'utf8'));
/** Processes working under our output base: the actions Bazel spawned (the server's cwd is the workspace). */
function actionProcesses(): string[] {
  return fs
    .readdirSync('/proc')
    .filter((pid) => /^\d+$/.test(pid))
    .flatMap((pid) => {
      try {
        return fs.readlinkSync(`/proc/${pid}/cwd`).startsWith(outputBase) ? [`${pid} ${fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim()}`] : [];
      } catch {
        return []; // gone, or not ours to read
      }
    });
}

async function until(what: string, condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Starts `bazel build //:slow` and resolves once its `sleep` runs, with the command's id. */
async function startSlowBuild(server: BazelServer, signal: AbortSignal) {
  let commandId = '';
  const outcome = bazel(server, clientRequest('build', ['//:slow']), signal, (r) => (commandId ||= r.commandId));
  await until('the slow genrule to run', () => actionProcesses().some((p) => p.endsWith(' sleep')));
  return { commandId, outcome };
}

let server: BazelServer;

beforeAll(async () => {
  writeWorkspace();
  server = new BazelServer({ workspaceDir, outputBase, logFile, maxIdleSecs: 600 });
  const started = Date.now();
  await Promise.all([server.ensureStarted(), server.ensureStarted()]);
  timings['server start'] = Date.now() - started;
});

afterAll(async () => {
  await server?.shutdown().catch(() => undefined);
  const pidFile = path.join(outputBase, 'server', 'server.pid.txt');
  if (fs.existsSync(pidFile) && isAlive(serverPid())) process.kill(serverPid(), 'SIGKILL');
  fs.rmSync(root, { recursive: true, force: true });
  console.log(
    Object.entries(timings)
      .map(([what, ms]) => `${what}: ${ms} ms`)
      .join('\n'),
  );
});

test('concurrent ensureStarted calls start one server', () => {
  expect(fs.readFileSync(logFile, 'utf8').match(/ info release/g)).toHaveLength(1);
  expect(isAlive(serverPid())).toBe(true);
});

test('a genrule builds into the agent’s bazel-bin; a no-op rebuild is quick', async () => {
  const cold = await bazel(server, clientRequest('build', ['//:copy']));
  expect(cold).toMatchObject({ exitCode: 0 });
  expect(fs.readFileSync(path.join(workspaceDir, 'bazel-bin', 'out.txt'), 'utf8')).toBe('hello\n');
  expect(cold.responses.every((r) => r.cookie === '')).toBe(true);
  const noop = await bazel(server, clientRequest('build', ['//:copy']));
  expect(noop.exitCode).toBe(0);
  expect(noop.ms).toBeLessThan(cold.ms);
  timings['cold build'] = cold.ms;
  timings['no-op rebuild'] = noop.ms;
});

test('exit codes pass through: broken BUILD 1, bad flag 2, failing test 3, passing test 0', async () => {
  fs.mkdirSync(path.join(workspaceDir, 'broken'));
  fs.writeFileSync(path.join(workspaceDir, 'broken', 'BUILD'), 'genrule(\n');
  try {
    expect((await bazel(server, clientRequest('build', ['//broken:all']))).exitCode).toBe(1);
  } finally {
    fs.rmSync(path.join(workspaceDir, 'broken'), { recursive: true });
  }
  const badFlag = await bazel(server, clientRequest('build', ['--no_such_flag', '//:copy']));
  expect(badFlag.exitCode).toBe(2);
  expect(badFlag.stderr).toContain('no_such_flag');
  expect((await bazel(server, clientRequest('test', ['//:fail']))).exitCode).toBe(3);
  expect((await bazel(server, clientRequest('test', ['//:pass']))).exitCode).toBe(0);
});

test('info and query answer with the agent’s paths', async () => {
  const info = await bazel(server, clientRequest('info', ['output_base', 'workspace']));
  expect(info.exitCode).toBe(0);
  expect(info.stdout).toBe(`output_base: ${outputBase}\nworkspace: ${workspaceDir}\n`);
  const query = await bazel(server, clientRequest('query', ['//...']));
  expect(query.exitCode).toBe(0);
  expect(query.stdout.split('\n').sort()).toEqual(['', '//:copy', '//:fail', '//:pass', '//:slow', '//pkg:env']);
});

test('laptop paths are mapped: a relative label from a laptop subdirectory, with the agent’s PATH', async () => {
  expect(fs.existsSync(LAPTOP.clientWorkspace)).toBe(false);
  expect((await bazel(server, clientRequest('build', [':env'], { cwd: 'pkg' }))).exitCode).toBe(0);
  expect(fs.readFileSync(path.join(workspaceDir, 'bazel-bin', 'pkg', 'env.txt'), 'utf8')).toBe(`PATH=${process.env.PATH}\n`);
});

test('aborting a run cancels the command on the server, which frees its lock', async () => {
  const abort = new AbortController();
  const { outcome } = await startSlowBuild(server, abort.signal);
  const abortedAt = Date.now();
  abort.abort();
  expect((await outcome).exitCode).toBe(8);
  timings['abort to end of stream'] = Date.now() - abortedAt;
  await until('the sleep to go', () => actionProcesses().length === 0, 2_000);
  timings['abort to no action process'] = Date.now() - abortedAt;
  // Without waiting for the lock: a command still running would make this exit 9.
  const next = await bazel(server, clientRequest('build', ['//:copy'], { blockForLock: false }));
  expect(next.exitCode).toBe(0);
  timings['next command after abort'] = next.ms;
});

test('cancel(commandId) stops a running command', async () => {
  const { commandId, outcome } = await startSlowBuild(server, new AbortController().signal);
  await server.cancel(commandId);
  expect((await outcome).exitCode).toBe(8);
});

test('a `shutdown` command ends with termination_expected; the next run starts a new server', async () => {
  const pid = serverPid();
  const shutdown = await bazel(server, clientRequest('shutdown', []));
  expect(shutdown.responses.at(-1)).toMatchObject({ finished: true, exitCode: 0, terminationExpected: true });
  expect(isAlive(pid)).toBe(false);
  const rebuild = await bazel(server, clientRequest('build', ['//:copy']));
  expect(rebuild.exitCode).toBe(0);
  expect(serverPid()).not.toBe(pid);
  timings['build after `shutdown` command (incl. server start)'] = rebuild.ms;
});

test('after shutdown() a run restarts the server, and the action cache on the output base is warm', async () => {
  const out = path.join(workspaceDir, 'bazel-bin', 'out.txt');
  const builtAt = fs.statSync(out).mtimeMs;
  const pid = serverPid();
  await server.shutdown();
  expect(isAlive(pid)).toBe(false);
  const restartedAt = Date.now();
  await server.ensureStarted();
  timings['server restart after shutdown()'] = Date.now() - restartedAt;
  const rebuild = await bazel(server, clientRequest('build', ['//:copy']));
  expect(rebuild.exitCode).toBe(0);
  expect(fs.statSync(out).mtimeMs).toBe(builtAt); // the action did not run again
  timings['build on the restarted server'] = rebuild.ms;
});

test('changed startup options that shape the server restart it with them, as a local client would', async () => {
  const cmdline = () => fs.readFileSync(path.join(outputBase, 'server', 'cmdline'), 'latin1').split('\0');
  const withJvmArg = clientRequest('info', ['release']);
  withJvmArg.startupOptions.push(
    { option: Buffer.from('--host_jvm_args=-Drbs.test=1'), source: Buffer.from(`${LAPTOP.clientWorkspace}/.bazelrc`) },
    { option: Buffer.from('--install_base=/home/dev/install'), source: Buffer.from('') },
  );
  const before = serverPid();
  expect((await bazel(server, withJvmArg)).exitCode).toBe(0);
  const restarted = serverPid();
  expect(restarted).not.toBe(before);
  expect(cmdline()).toContain('--host_jvm_args=-Drbs.test=1');
  expect(cmdline().join(' ')).not.toContain('/home/dev'); // places stay the agent's own

  expect((await bazel(server, withJvmArg)).exitCode).toBe(0);
  expect(serverPid()).toBe(restarted);

  expect((await bazel(server, clientRequest('build', ['//:copy']))).exitCode).toBe(0);
  expect(serverPid()).not.toBe(restarted);
  expect(cmdline()).not.toContain('--host_jvm_args=-Drbs.test=1');
});

test('ensureStarted outside a workspace fails with the client’s output', async () => {
  const notWorkspace = path.join(root, 'not-a-workspace');
  fs.mkdirSync(notWorkspace);
  const stray = new BazelServer({ workspaceDir: notWorkspace, outputBase: path.join(root, 'ob-stray') });
  await expect(stray.ensureStarted()).rejects.toThrow(/info release` in .*not-a-workspace exited with 2: .*only supported from within a workspace/s);
});

test('an agent restart: the new BazelServer stops the server it did not start and runs on its own; one server remains', async () => {
  const previous = serverPid();
  server.close(); // what the previous agent knew dies with it
  server = new BazelServer({ workspaceDir, outputBase, logFile, maxIdleSecs: 600 });
  const started = Date.now();
  expect((await bazel(server, clientRequest('build', ['//:copy']))).exitCode).toBe(0);
  timings['first build after an agent restart'] = Date.now() - started;
  expect(isAlive(previous)).toBe(false);
  expect(bazelServersOn(outputBase)).toEqual([serverPid()]);
});

test('`bazel run`: the exec_request the server answers with is returned, never relayed; a test target runs only remotely', async () => {
  const responses: RunResponse__Output[] = [];
  const exec = await server.run(clientRequest('run', ['//:pass', '--', 'a b']), LAPTOP, (r) => responses.push(r), new AbortController().signal);
  expect(responses.some((r) => r.execRequest || r.finished)).toBe(false);
  expect(exec?.argv.map(String)).toEqual(['/bin/bash', '-c', "external/bazel_tools/tools/test/test-setup.sh ./pass 'a b'"]);
  expect(describeRun(exec!, outputBase, workspaceDir)).toMatchObject({ executable: '', remoteOnlyReason: expect.stringContaining('//:pass is a test') });
});
