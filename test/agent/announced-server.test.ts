/**
 * Build code can write <output_base>/server/ on the volume and run a server of its own. The agent
 * must never talk to a server it did not start, nor signal a process because a file names it. A
 * real agent (over mTLS, as the session's proxy calls it) with the real Bazel client and server;
 * the hostile server is a fake, as build code would run one.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { RunResponse__Output } from '../../gen/proto/command_server/RunResponse';
import { type HostileBazelServer, startHostileBazelServer } from '../fakes/hostile-bazel-server';
import { pinStartedServer } from '../../services/agent/server-pin';
import { publishServer } from '../../lib/bazel/server-files';
import { isAlive } from '../data-path/fixture';
import { type Fixture, startFixture, write } from '../sync/fixture';
import { waitFor } from '../harness/wait';

jest.setTimeout(120_000);

let f: Fixture;
let hostile: HostileBazelServer;
let marker: string;
const outputBase = () => path.join(f.root, 'output_base');
const serverFile = (name: string) => path.join(outputBase(), 'server', name);

beforeAll(async () => {
  f = await startFixture();
  marker = path.join(f.root, 'executed');
  hostile = await startHostileBazelServer(`touch ${marker}`, f.root);
  write(f.source, { WORKSPACE: '', BUILD: 'genrule(name = "g", outs = ["g.txt"], cmd = "echo hi > $@")\n' });
});
afterAll(async () => {
  await hostile.stop();
  await f.stop();
});

/** `bazel info release` through the agent, as the session's proxy: the exit code, or the call's error. */
async function info(): Promise<{ exitCode?: number; error?: grpc.ServiceError }> {
  const { syncId } = await f.sync();
  const client = f.client();
  const call = client.run({
    request: {
      arg: ['info', 'release', `--client_cwd=${f.source}`].map((a) => Buffer.from(a)),
      blockForLock: true,
      clientDescription: 'pid=4242',
      startupOptions: [],
    },
    clientWorkspace: f.source,
    syncId,
  });
  try {
    return await new Promise((resolve) => {
      let exitCode = -1;
      call.on('data', (r: RunResponse__Output) => r.finished && (exitCode = r.exitCode));
      call.on('end', () => resolve({ exitCode }));
      call.on('error', (error: grpc.ServiceError) => resolve({ error }));
    });
  } finally {
    client.close();
  }
}

test('a fake announced before the agent started any server is refused, named, and never signalled', async () => {
  await hostile.announceIn(outputBase());
  const { error } = await info();
  expect(error?.details).toContain(`${serverFile('server.pid.txt')} names pid ${hostile.standIn.pid}`);
  expect(isAlive(hostile.standIn.pid)).toBe(true);
  expect(hostile.calls).toEqual([]);
  expect(fs.existsSync(marker)).toBe(false);
});

test('once the announced process is gone, the agent starts its own server', async () => {
  hostile.standIn.kill('SIGKILL');
  await waitFor(() => !isAlive(hostile.standIn.pid), 5_000, 'the stand-in to exit');
  expect(await info()).toEqual({ exitCode: 0 });
  expect(hostile.calls).toEqual([]);
});

test('files that keep our server’s pid but name the fake’s address and cookies are ignored: the agent keeps its pin', async () => {
  const ours = Number(fs.readFileSync(serverFile('server.pid.txt'), 'latin1'));
  const swapped = { command_port: hostile.address, request_cookie: hostile.requestCookie, response_cookie: hostile.responseCookie };
  const genuine = Object.fromEntries(Object.keys(swapped).map((name) => [name, fs.readFileSync(serverFile(name))]));
  try {
    Object.entries(swapped).forEach(([name, value]) => fs.writeFileSync(serverFile(name), value));
    expect(await info()).toEqual({ exitCode: 0 });
    expect(isAlive(ours)).toBe(true);
    expect(hostile.calls).toEqual([]);
  } finally {
    Object.entries(genuine).forEach(([name, value]) => fs.writeFileSync(serverFile(name), value));
  }
});

test('a pin is refused when command_port names a port that the announced process does not listen on, or a process that is not a Bazel server', async () => {
  hostile.standIn.kill('SIGKILL');
  expect(await info()).toEqual({ exitCode: 0 }); // our server runs, and announced itself
  const ours = { address: fs.readFileSync(serverFile('command_port'), 'latin1'), requestCookie: 'x', responseCookie: 'y' };
  await publishServer(outputBase(), { ...ours, pid: Number(fs.readFileSync(serverFile('server.pid.txt'), 'latin1')) });
  await expect(pinStartedServer(outputBase())).resolves.toMatchObject({ address: ours.address });

  fs.writeFileSync(serverFile('command_port'), hostile.address);
  await expect(pinStartedServer(outputBase())).rejects.toThrow(`${serverFile('command_port')} names ${hostile.address}, where the Bazel server`);

  const notBazel = spawn('sleep', ['600'], { stdio: 'ignore' });
  try {
    await publishServer(outputBase(), { ...ours, pid: notBazel.pid! });
    await expect(pinStartedServer(outputBase())).rejects.toThrow(`names pid ${notBazel.pid}, which is not a running Bazel server`);
  } finally {
    notBazel.kill('SIGKILL');
  }
});
