/**
 * Build code writes anything on the volume, the agent's <output_base>/server/ included, and the
 * laptop's stock Bazel client execs any exec_request that reaches it. Neither may give the build a
 * way onto the developer's machine. The whole data path with real parts (stock client, proxy,
 * agent, Bazel server, rsync); the hostile Bazel server is a fake, as build code would run one.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { CommandServerClient } from '../../gen/proto/command_server/CommandServer';
import { protos } from '../../lib/grpc/protos';
import { startHostileBazelServer } from '../fakes/hostile-bazel-server';
import { useStack } from '../harness/stack';
import { waitFor } from '../harness/wait';
import { type BazelWorkspace, isAlive, remoteOf, workspaceOfNewUser } from './fixture';

jest.setTimeout(180_000);

const stack = useStack();
let ws: BazelWorkspace;
let user = 0;

beforeEach(async () => {
  ws = await workspaceOfNewUser(stack(), `attacked${user++}`);
});
afterEach(() => ws.destroy());

const build = (...targets: string[]) => ws.bazel(['build', ...ws.buildOptions, ...targets]);

it('a fake Bazel server announced from inside a build is neither attached nor relayed', async () => {
  const marker = path.join(ws.root, 'executed-on-the-laptop');
  const hostile = await startHostileBazelServer(`touch ${marker}`, ws.root);
  try {
    expect((await build('//:gen')).code).toBe(0);
    const { workspace, outputBase } = await remoteOf(stack(), ws);
    const serverFile = (name: string) => path.join(outputBase, 'server', name);
    const realServer = Number(ws.serverFile('server.pid.txt', outputBase));

    // The fake's address and cookies under the real server's pid: the build runs on the agent's own server.
    fs.writeFileSync(serverFile('command_port'), hostile.address);
    fs.writeFileSync(serverFile('request_cookie'), hostile.requestCookie);
    fs.writeFileSync(serverFile('response_cookie'), hostile.responseCookie);
    fs.writeFileSync(path.join(ws.workspace, 'in.txt'), 'changed\n');
    expect((await build('//:gen')).code).toBe(0);
    expect(fs.readFileSync(path.join(workspace, 'bazel-bin', 'gen.txt'), 'utf8')).toBe('changed\n');

    // The whole announcement, pid included: the real server sees its pid file overwritten and halts
    // (Bazel's own watch), and the agent refuses to start another while the announced process runs.
    await hostile.announceIn(outputBase);
    await waitFor(() => !isAlive(realServer), 20_000, 'the real Bazel server to halt');
    const refused = await build('//:gen');
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(`${serverFile('server.pid.txt')} names pid ${hostile.standIn.pid}`);
    expect(isAlive(hostile.standIn.pid)).toBe(true); // named by a file on the volume: never signalled

    expect(hostile.calls).toEqual([]);
    expect(fs.existsSync(marker)).toBe(false);

    // Once the process the files name is gone, the session comes back by itself.
    hostile.standIn.kill('SIGKILL');
    await waitFor(() => !isAlive(hostile.standIn.pid), 5_000, 'the stand-in to exit');
    expect((await build('//:gen')).code).toBe(0);
    expect(hostile.calls).toEqual([]);
  } finally {
    await hostile.stop();
  }
});

it('a Ping with a wrong cookie does not extend the proxy’s idle timeout', async () => {
  expect((await ws.bazel(['info', 'release'], ['--max_idle_secs=3'])).code).toBe(0);
  const pid = ws.proxyPid();
  const client = new (protos().bazel.command_server.CommandServer)(ws.serverFile('command_port')!, grpc.credentials.createInsecure()) as CommandServerClient;
  const pinger = setInterval(() => client.Ping({ cookie: 'wrong' }, () => undefined), 200);
  try {
    await waitFor(() => !isAlive(pid), 15_000, 'the idle proxy to exit while pinged with a wrong cookie');
  } finally {
    clearInterval(pinger);
    client.close();
  }
});
