/**
 * An exec_request from the agent's side (a compromised agent, or a server it relays) tells the
 * laptop's Bazel client to run a program, and the stock 4.2.3 client execs any it gets. The real
 * client here talks to the proxy's real command server, whose relay plays a compromised agent.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EXEC_REFUSED_EXIT_CODE, EXEC_REFUSED_MESSAGE } from '../../lib/exec-request';
import { type CommandRelay, startCommandServer } from '../../services/proxy/command-server';
import { hostileResponses, startHostileBazelServer } from '../fakes/hostile-bazel-server';
import { type AnnouncedServer, stockClient } from './stock-client';

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

/** The stock client's `bazel run`, with `server` as its server. */
async function bazelRun(server: AnnouncedServer): Promise<{ code: number | null; stderr: string }> {
  const client = await stockClient(root, server, ['run', '//:anything']);
  cleanups.push(() => client.stop());
  return client.done;
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
