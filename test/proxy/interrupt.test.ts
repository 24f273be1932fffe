/**
 * Ctrl-C ends the stock client within 2 s whatever the command is doing, and whatever the relay
 * behind the proxy does about it: the proxy's command server gives the client its own command id
 * at once, so the client's Cancel never waits on the agent.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { CommandServerClient } from '../../gen/proto/command_server/CommandServer';
import { protos } from '../../lib/grpc/protos';
import { type CommandRelay, INTERRUPT_DEADLINE_MS, startCommandServer } from '../../services/proxy/command-server';
import { waitFor } from '../harness/wait';
import { stockClient } from './stock-client';

jest.setTimeout(60_000);

const INTERRUPTED = 8;
let root: string;
const cleanups: (() => unknown)[] = [];

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-interrupt-'));
  fs.mkdirSync(path.join(root, 'ws'));
  fs.writeFileSync(path.join(root, 'ws', 'WORKSPACE'), '');
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  fs.rmSync(root, { recursive: true, force: true });
});

/** `bazel build //:x` through the proxy's command server with `relay` behind it; Ctrl-C once `started` says so. */
async function interruptedBuild(relay: CommandRelay, started: () => boolean) {
  const requestCookie = randomBytes(16).toString('hex');
  const responseCookie = randomBytes(16).toString('hex');
  const proxy = await startCommandServer({ relay, requestCookie, responseCookie });
  cleanups.push(() => proxy.stop());
  const client = await stockClient(root, { address: proxy.address, requestCookie, responseCookie }, ['build', '//:x']);
  cleanups.push(() => client.stop());
  await waitFor(started, 20_000, 'the command to reach the relay');
  const at = Date.now();
  client.child.kill('SIGINT');
  const result = await client.done;
  return { ...result, ms: Date.now() - at };
}

test('a relay that never answers and ignores the interrupt (a frozen agent): exit 8 within 2 s, saying why', async () => {
  let reached = false;
  const frozen: CommandRelay = { run: () => ((reached = true), new Promise<void>(() => undefined)) };
  const result = await interruptedBuild(frozen, () => reached);
  expect(result.code).toBe(INTERRUPTED);
  expect(result.ms).toBeLessThan(2000);
  expect(result.ms).toBeGreaterThanOrEqual(INTERRUPT_DEADLINE_MS - 100);
  expect(result.stderr).toMatch(/RBS proxy: interrupted; the remote command had not ended 1500 ms later/);
});

test('a relay that stops when interrupted, before any output: exit 8 at once', async () => {
  let reason: unknown;
  let reached = false;
  const stopping: CommandRelay = {
    run: (_request, _onResponse, signal) =>
      new Promise<void>((_resolve, reject) => {
        reached = true;
        signal.addEventListener('abort', () => ((reason = signal.reason), reject(new Error('stopped the sync'))));
      }),
  };
  const result = await interruptedBuild(stopping, () => reached);
  expect(result.code).toBe(INTERRUPTED);
  expect(result.ms).toBeLessThan(INTERRUPT_DEADLINE_MS);
  expect(String(reason)).toMatch(/interrupted \(Ctrl-C\)/);
  expect(result.stderr).toMatch(/RBS proxy: interrupted \(stopped the sync\)/);
});

test('a relay whose remote command ends itself when interrupted: its own output and exit code reach the client', async () => {
  let streaming = false;
  const remote: CommandRelay = {
    run: (_request, onResponse, signal) =>
      new Promise<void>((resolve) => {
        onResponse({ commandId: 'the-agents-id', standardError: Buffer.from('INFO: remote build running\n') });
        streaming = true;
        signal.addEventListener('abort', () => {
          onResponse({ standardError: Buffer.from('ERROR: build interrupted (remote)\n'), finished: true, exitCode: INTERRUPTED });
          resolve();
        });
      }),
  };
  const result = await interruptedBuild(remote, () => streaming);
  expect(result.code).toBe(INTERRUPTED);
  expect(result.ms).toBeLessThan(INTERRUPT_DEADLINE_MS);
  expect(result.stderr).toContain('INFO: remote build running');
  expect(result.stderr).toContain('ERROR: build interrupted (remote)');
  expect(result.stderr).not.toContain('RBS proxy');
});

test('a Cancel for an id the proxy does not run, even with the right cookie, interrupts nothing', async () => {
  const requestCookie = randomBytes(16).toString('hex');
  const responseCookie = randomBytes(16).toString('hex');
  let cancelled = false;
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const relay: CommandRelay = {
    run: async (_request, onResponse, signal) => {
      signal.addEventListener('abort', () => (cancelled = true));
      await released;
      onResponse({ standardError: Buffer.from('INFO: Build completed successfully\n'), finished: true, exitCode: 0 });
    },
  };
  const proxy = await startCommandServer({ relay, requestCookie, responseCookie });
  cleanups.push(() => proxy.stop());
  const client = await stockClient(root, { address: proxy.address, requestCookie, responseCookie }, ['build', '//:x']);
  cleanups.push(() => client.stop());
  const other = new (protos().bazel.command_server.CommandServer)(proxy.address, grpc.credentials.createInsecure()) as CommandServerClient;
  cleanups.push(() => other.close());
  for (const commandId of [randomUUID(), '', 'the-agents-id']) {
    const answer = await new Promise<{ cookie: string }>((resolve, reject) =>
      other.Cancel({ cookie: requestCookie, commandId }, (err, response) => (err ? reject(err) : resolve(response!))),
    );
    expect(answer.cookie).toBe(responseCookie); // as the real server: no error for an id it does not run
  }
  release();
  const result = await client.done;
  expect({ code: result.code, cancelled }).toEqual({ code: 0, cancelled: false });
});
