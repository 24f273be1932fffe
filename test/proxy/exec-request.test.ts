/**
 * An exec_request from the agent's side (a compromised agent, or a server it relays) tells the
 * laptop's Bazel client to run a program, and the stock 4.2.3 client execs any it gets. The real
 * client here talks to the proxy's real command server, whose relay plays a compromised agent.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EXEC_REFUSED_EXIT_CODE, EXEC_REFUSED_MESSAGE } from '../../lib/exec-request';
import { type CommandRelay, startCommandServer } from '../../services/proxy/command-server';
import { publishServer } from '../../lib/bazel/server-files';
import { hostileResponses, startHostileBazelServer } from '../fakes/hostile-bazel-server';
import { waitFor } from '../harness/wait';

jest.setTimeout(60_000);

let root: string;
let marker: string;
const cleanups: (() => unknown)[] = [];

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-exec-request-'));
  marker = path.join(root, 'executed');
  fs.mkdirSync(path.join(root, 'ws'));
  fs.writeFileSync(path.join(root, 'ws', 'WORKSPACE'), '');
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  fs.rmSync(root, { recursive: true, force: true });
});

/**
 * The stock client's `bazel run`, with `server` as its server. The client starts the javabase's
 * bin/java in its server's place, as it starts the proxy; here bin/java only records its pid and
 * sleeps, standing in for the server process that the in-process `server` is announced as.
 */
async function bazelRun(server: { address: string; requestCookie: string; responseCookie: string }): Promise<{ code: number | null; stderr: string }> {
  const javabase = path.join(root, 'javabase');
  const standInPid = path.join(root, 'stand-in.pid');
  fs.mkdirSync(path.join(javabase, 'bin'), { recursive: true });
  fs.writeFileSync(path.join(javabase, 'bin', 'java'), `#!/bin/sh\necho $$ > ${standInPid}\nexec sleep 600\n`, { mode: 0o755 });
  const outputBase = path.join(root, 'ob');
  const argv = [`--output_base=${outputBase}`, `--server_javabase=${javabase}`, 'run', '//:anything'];
  const child = spawn('/usr/bin/bazel', argv, { cwd: path.join(root, 'ws'), stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const done = new Promise<{ code: number | null; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stderr })));
  await waitFor(() => fs.existsSync(standInPid) && fs.readFileSync(standInPid, 'utf8').endsWith('\n'), 30_000, 'the client to start its server');
  const pid = Number(fs.readFileSync(standInPid, 'utf8'));
  cleanups.push(() => process.kill(pid, 'SIGKILL'));
  await publishServer(outputBase, { pid, ...server });
  return done;
}

test('the attack is real: the stock client execs an exec_request that its server sends', async () => {
  const hostile = await startHostileBazelServer(`touch ${marker}`, root);
  cleanups.push(() => hostile.stop());
  await bazelRun(hostile);
  expect(hostile.calls).toContain('Run');
  expect(fs.existsSync(marker)).toBe(true);
});

test('an exec_request from a compromised agent is not relayed by the proxy, and nothing is executed', async () => {
  const compromisedAgent: CommandRelay = {
    run: async (_request, onResponse) => hostileResponses(`touch ${marker}`, root).forEach(onResponse),
    cancel: async () => undefined,
  };
  const requestCookie = randomBytes(16).toString('hex');
  const responseCookie = randomBytes(16).toString('hex');
  const proxy = await startCommandServer({ relay: compromisedAgent, requestCookie, responseCookie });
  cleanups.push(() => proxy.stop());
  const run = await bazelRun({ address: proxy.address, requestCookie, responseCookie });
  expect(run.stderr).toContain('INFO: Build completed successfully');
  expect(run.stderr).toContain(EXEC_REFUSED_MESSAGE.trim());
  expect(run.code).toBe(EXEC_REFUSED_EXIT_CODE);
  expect(fs.existsSync(marker)).toBe(false);
});
