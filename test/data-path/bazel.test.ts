/**
 * The whole data path with real parts only: the stock Bazel 4.2.3 client starts the RBS proxy
 * (through `rbs javabase`); the proxy gets a session from the orchestrator, syncs with real rsync
 * over mTLS and relays to the session's agent, which drives a real Bazel server on the volume.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { CommandServerClient } from '../../gen/proto/command_server/CommandServer';
import type { RunResponse__Output } from '../../gen/proto/command_server/RunResponse';
import { protos } from '../../lib/grpc/protos';
import { encodeServerInfo, processStartTime } from '../../lib/bazel/server-files';
import { useStack } from '../harness/stack';
import { waitFor } from '../harness/wait';
import { type BazelWorkspace, isAlive, remoteOf, workspaceOfNewUser, writeFiles } from './fixture';

jest.setTimeout(120_000);

const stack = useStack();
let ws: BazelWorkspace;
let user = 0;

beforeEach(async () => {
  ws = await workspaceOfNewUser(stack(), `dev${user++}`);
});
afterEach(() => ws.destroy());

/** Where the session keeps this workspace: its copy and Bazel's output base, on the volume. */
const remote = () => remoteOf(stack(), ws);

const build = (...targets: string[]) => ws.bazel(['build', ...ws.buildOptions, ...targets]);

/**
 * What Bazel prints once the build is done (from the targets' summary), with its times (the only
 * part two runs differ in) and RBS's own notes (`RBS: …`, said aloud on purpose) left out.
 */
function closingLines(stderr: string): string[] {
  expect(stderr).toContain('Target //');
  return stderr
    .slice(stderr.indexOf('Target //'))
    .replace(/\d+\.\d+s/g, 'N.NNs')
    .split('\n')
    .filter((line) => !/^(INFO: )?RBS: /.test(line));
}

it('builds remotely, with the output a local build gives; info, query, test and clean work', async () => {
  const first = await build('//:gen');
  expect(first).toMatchObject({ code: 0 });
  // A new user's first command waits for their session to be provisioned, and says so on the terminal.
  expect(first.stderr).toMatch(/^RBS: waiting for the session: (starting the agent|waiting for the agent|syncing the workspace)$/m);
  const { workspace } = await remote();
  // Built there, fetched here: the laptop's link leads into its own output base.
  expect(fs.readlinkSync(path.join(ws.workspace, 'bazel-bin')).startsWith(`${ws.outputBase}/`)).toBe(true);
  const local = await ws.local(['build', ...ws.buildOptions, '//:gen']);
  expect(local.code).toBe(0);
  // Bazel's closing lines read as the local build's: none from the agent's own build event file.
  expect(closingLines(first.stderr)).toEqual(closingLines(local.stderr));
  // And a `bazel run`'s, whose target's command line comes between the status line and the final one.
  const [remoteRun, localRun] = [await ws.bazel(['run', ...ws.buildOptions, '//:pass']), await ws.local(['run', ...ws.buildOptions, '//:pass'])];
  expect(remoteRun.code).toBe(0);
  expect(closingLines(remoteRun.stderr)).toEqual(closingLines(localRun.stderr));
  expect(fs.readFileSync(path.join(workspace, 'bazel-bin', 'gen.txt'), 'utf8')).toBe(fs.readFileSync(path.join(ws.workspace, 'bazel-bin', 'gen.txt'), 'utf8'));

  expect(await ws.bazel(['info', 'release'])).toMatchObject({ code: 0, stdout: 'development version\n' });
  const query = await ws.bazel(['query', '//:all']);
  expect(query.stdout.split('\n').sort()).toEqual(['', '//:fail', '//:gen', '//:pass', '//:slow']);
  expect((await ws.bazel(['test', ...ws.buildOptions, '//:pass'])).code).toBe(0);

  expect((await ws.bazel(['clean'])).code).toBe(0);
  expect(fs.existsSync(path.join(workspace, 'bazel-bin', 'gen.txt'))).toBe(false);
});

it('passes exit codes through: 1 broken BUILD, 2 bad flag, 3 failing test', async () => {
  const broken = await build('//broken:x');
  expect(broken.code).toBe(1);
  expect(broken.stderr).toMatch(/broken\/BUILD/);
  const badFlag = await ws.bazel(['build', '--no_such_flag', '//:gen']);
  expect(badFlag.code).toBe(2);
  expect(badFlag.stderr).toMatch(/Unrecognized option: --no_such_flag/);
  const failing = await ws.bazel(['test', ...ws.buildOptions, '//:fail']);
  expect(failing.code).toBe(3);
  const local = await ws.local(['test', ...ws.buildOptions, '//:fail']);
  expect(local.code).toBe(3);
  expect(closingLines(failing.stderr)).toEqual(closingLines(local.stderr));

  // Each command's exit code reaches the session's timeline too (rbs describe).
  const { session } = await remote();
  const operator = await stack().client('ops', { operator: true });
  const reported = async () => (await operator.describeSessionTimeline(session.sessionId)).commands.map((c) => `${c.verb} ${c.exitCode}`);
  await waitFor(async () => (await reported()).length >= 3, 10_000, 'the three commands to be reported');
  expect(await reported()).toEqual(['build 1', 'build 2', 'test 3']);
});

it('syncs before every command: edits are seen, deletions follow, ignored files stay home and are named when missed', async () => {
  execFileSync('git', ['init', '-q'], { cwd: ws.workspace, env: process.env });
  fs.writeFileSync(path.join(ws.workspace, '.gitignore'), 'secret.txt\n');
  fs.writeFileSync(path.join(ws.workspace, 'secret.txt'), 'do not send\n');
  fs.writeFileSync(path.join(ws.workspace, 'extra.txt'), 'extra\n');
  expect((await build('//:gen')).code).toBe(0);
  const { workspace } = await remote();
  expect(fs.existsSync(path.join(workspace, 'extra.txt'))).toBe(true);
  expect(fs.existsSync(path.join(workspace, 'secret.txt'))).toBe(false);

  fs.writeFileSync(path.join(ws.workspace, 'in.txt'), 'edited\n');
  fs.rmSync(path.join(ws.workspace, 'extra.txt'));
  expect((await build('//:gen')).code).toBe(0);
  expect(fs.readFileSync(path.join(workspace, 'bazel-bin', 'gen.txt'), 'utf8')).toBe('edited\n');
  expect(fs.existsSync(path.join(workspace, 'extra.txt'))).toBe(false);

  // A genrule reads a generated file git ignores: the failure names it and how to send it.
  writeFiles(ws.workspace, {
    '.gitignore': 'secret.txt\ngen/config.h\n',
    'gen/BUILD': 'genrule(name = "copy", srcs = ["config.h"], outs = ["copy.h"], cmd = "cp $< $@")\n',
    'gen/config.h': '#define GENERATED 1\n',
  });
  const missed = await build('//gen:copy');
  expect(missed.code).toBe(1);
  expect(missed.stderr).toContain("missing input file '//gen:config.h'");
  expect(missed.stderr).toContain(`could not find gen/config.h, which exist in ${ws.workspace} but were not sent`);
  expect(missed.stderr).toContain(`"sync.include" in ${path.join(ws.workspace, '.rbs.json')}`);
  writeFiles(ws.workspace, { '.rbs.json': '{"sync": {"include": ["gen/config.h"]}}' });
  expect((await build('//gen:copy')).code).toBe(0);
});

it('syncs everything first, then nothing while nothing changed, then only what changed', async () => {
  const syncs = () => (ws.serverFile('jvm.out') ?? '').match(/synced .* in \d+ ms/g) ?? [];
  expect((await build('//:gen')).code).toBe(0);
  expect(syncs()).toEqual([expect.stringMatching(/^synced everything in/)]);
  expect((await build('//:gen')).code).toBe(0);
  expect(syncs()).toHaveLength(1);
  fs.writeFileSync(path.join(ws.workspace, 'in.txt'), 'changed\n');
  expect((await build('//:gen')).code).toBe(0);
  expect(syncs()[1]).toMatch(/^synced 1 changed paths in/);
  expect(fs.readFileSync(path.join((await remote()).workspace, 'bazel-bin', 'gen.txt'), 'utf8')).toBe('changed\n');
});

it('publishes what the client reads, as the real server does', async () => {
  expect((await ws.bazel(['info', 'release'])).code).toBe(0);
  const pid = ws.proxyPid();
  expect(ws.serverFile('command_port')).toMatch(/^127\.0\.0\.1:\d+$/);
  expect(ws.serverFile('server.starttime')).toBe(await processStartTime(pid));
  const announced = {
    pid,
    address: ws.serverFile('command_port')!,
    requestCookie: ws.serverFile('request_cookie')!,
    responseCookie: ws.serverFile('response_cookie')!,
  };
  expect(Buffer.from(ws.serverFile('server_info.rawproto')!, 'latin1')).toEqual(encodeServerInfo(announced));

  // The real server on the agent encodes its ServerInfo byte for byte as we do.
  const { outputBase } = await remote();
  const real = {
    pid: Number(ws.serverFile('server.pid.txt', outputBase)),
    address: ws.serverFile('command_port', outputBase)!,
    requestCookie: ws.serverFile('request_cookie', outputBase)!,
    responseCookie: ws.serverFile('response_cookie', outputBase)!,
  };
  expect(encodeServerInfo(real)).toEqual(Buffer.from(ws.serverFile('server_info.rawproto', outputBase)!, 'latin1'));
});

it('`bazel shutdown` stops proxy and remote server; the next build starts both, with warm caches', async () => {
  expect((await build('//:gen')).code).toBe(0);
  const first = ws.proxyPid();
  const { outputBase } = await remote();
  const realPid = Number(ws.serverFile('server.pid.txt', outputBase));
  expect((await ws.bazel(['shutdown'])).code).toBe(0);
  await waitFor(() => !isAlive(first), 10_000, 'the proxy to exit');
  await waitFor(() => !isAlive(realPid), 20_000, 'the remote server to exit');
  expect(ws.serverFile('command_port')).toBeUndefined();

  const again = await build('//:gen');
  expect(again.code).toBe(0);
  expect(ws.proxyPid()).not.toBe(first);
  // The action cache lives on the volume: nothing had to run again.
  expect(again.stderr).toMatch(/\b1 process: 1 internal\b/);
});

it('a startup option added to .bazelrc restarts the remote server with it, as it would a local one', async () => {
  expect((await build('//:gen')).code).toBe(0);
  const { outputBase } = await remote();
  const firstPid = ws.serverFile('server.pid.txt', outputBase);
  fs.appendFileSync(path.join(ws.workspace, '.bazelrc'), 'startup --host_jvm_args=-Drbs.e2e=1\n');
  expect((await build('//:gen')).code).toBe(0);
  expect(ws.serverFile('cmdline', outputBase)?.split('\0')).toContain('--host_jvm_args=-Drbs.e2e=1');
  expect(ws.serverFile('server.pid.txt', outputBase)).not.toBe(firstPid);
});

it('Ctrl-C: exit 8 at once, and the remote action is gone within 2 s', async () => {
  const { child, done } = ws.start(['build', ...ws.buildOptions, '//:slow']);
  await waitFor(() => ws.sleepers().length > 0, 60_000, 'the genrule to start sleeping');
  const interruptedAt = Date.now();
  child.kill('SIGINT');
  const result = await done;
  expect(Date.now() - interruptedAt).toBeLessThan(5000);
  expect(result.code).toBe(8);
  await waitFor(() => ws.sleepers().length === 0, 2000, 'the remote action to stop');
});

it('a SIGKILLed client: its remote command is cancelled and the next build is not blocked', async () => {
  const { child, done } = ws.start(['build', ...ws.buildOptions, '//:slow']);
  await waitFor(() => ws.sleepers().length > 0, 60_000, 'the genrule to start sleeping');
  child.kill('SIGKILL');
  await done;
  const next = await build('//:gen');
  expect(next.code).toBe(0);
  expect(next.ms).toBeLessThan(10_000);
  expect(ws.sleepers()).toEqual([]);
});

it('refuses wrong cookies and junk without crashing', async () => {
  expect((await ws.bazel(['info', 'release'])).code).toBe(0);
  const pid = ws.proxyPid();
  const address = ws.serverFile('command_port')!;
  const client = new (protos().bazel.command_server.CommandServer)(address, grpc.credentials.createInsecure()) as CommandServerClient;
  try {
    // As the real server: a ping without our cookie, a run that ends at once without our cookie.
    const ping = await new Promise((resolve, reject) => client.Ping({ cookie: 'wrong' }, (err, r) => (err ? reject(err) : resolve(r))));
    expect(ping).toEqual({ cookie: '' });
    const responses = await new Promise<RunResponse__Output[]>((resolve, reject) => {
      const seen: RunResponse__Output[] = [];
      const call = client.Run({ cookie: 'wrong', arg: [Buffer.from('info')], clientDescription: 'test' });
      call.on('data', (r: RunResponse__Output) => seen.push(r));
      call.on('end', () => resolve(seen));
      call.on('error', reject);
    });
    expect(responses).toEqual([expect.objectContaining({ cookie: '', exitCode: 36, finished: false })]);
    const cancel = await new Promise<grpc.ServiceError | null>((resolve) => client.Cancel({ cookie: 'wrong', commandId: 'x' }, (err) => resolve(err)));
    expect(cancel?.code).toBe(grpc.status.PERMISSION_DENIED);
    const junk = await new Promise<grpc.StatusObject>((resolve) => {
      const call = client.makeServerStreamRequest(
        '/command_server.CommandServer/Run',
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.from([0xff, 0xff, 0xff, 0xff]),
      );
      call.on('data', () => undefined);
      call.on('status', resolve);
      call.on('error', () => undefined);
    });
    expect(junk.code).not.toBe(grpc.status.OK);
  } finally {
    client.close();
  }
  // Bytes that are not even HTTP/2.
  const port = Number(address.slice(address.lastIndexOf(':') + 1));
  await new Promise<void>((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.end(Buffer.from('GET / HTTP/1.1\r\n\r\n\x00\xff garbage')));
    socket.resume();
    socket.on('error', () => resolve());
    socket.on('close', () => resolve());
  });
  expect(isAlive(pid)).toBe(true);
  expect(await ws.bazel(['info', 'release'])).toMatchObject({ code: 0, stdout: 'development version\n' });
  expect(ws.proxyPid()).toBe(pid);
});

it('after --max_idle_secs without commands the proxy exits and stops the remote server', async () => {
  expect((await ws.bazel(['info', 'release'], ['--max_idle_secs=2'])).code).toBe(0);
  const pid = ws.proxyPid();
  const realPid = Number(ws.serverFile('server.pid.txt', (await remote()).outputBase));
  await waitFor(() => !isAlive(pid), 20_000, 'the idle proxy to exit');
  expect(ws.serverFile('command_port')).toBeUndefined();
  await waitFor(() => !isAlive(realPid), 20_000, 'the remote server to exit');
});

it('without a session to be had, a command fails with the reason on the terminal', async () => {
  ws = Object.assign(ws, { env: { ...ws.env, RBS_CREDENTIALS: path.join(ws.root, 'nobody') } });
  const result = await build('//:gen');
  expect(result.code).toBe(37);
  expect(result.stderr).toMatch(/RBS proxy: .*not logged in/);
});
