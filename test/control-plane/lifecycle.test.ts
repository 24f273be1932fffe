import * as fs from 'node:fs';
import * as path from 'node:path';
import { useStack } from '../harness/stack';
import { waitFor } from '../harness/wait';

const stack = useStack({ RBS_IDLE_TIMEOUT_MS: '1500' });

const volumeFile = (volume: string, file: string) => path.join(stack().config.home, 'volumes', volume, 'workspace', file);

test('get-server → READY → heartbeat → idle suspend → resume on the same volume → end → nothing left', async () => {
  const alice = await stack().client('alice');
  const workspace = stack().workspace({ BUILD: '', 'src/main.txt': 'hello\n' });

  const session = await alice.getServer(workspace);
  expect(session).toMatchObject({ phase: 'READY', user: 'alice', workspace });
  expect(session.namespace).toMatch(/^alice-rbs-[0-9a-f]{20}$/);
  expect(session.agentAddress).toMatch(/^127\.0\.0\.1:\d+$/);
  expect(fs.readFileSync(volumeFile(session.volume, 'src/main.txt'), 'utf8')).toBe('hello\n');
  expect(await stack().worker.backend.listAgents()).toHaveLength(1);

  // Heartbeats keep it READY well past the idle timeout.
  for (let i = 0; i < 8; i++) {
    expect(await alice.heartbeat(session.sessionId)).toBe('READY');
    await new Promise((r) => setTimeout(r, 400));
  }
  expect((await alice.describeSession(session.sessionId)).phase).toBe('READY');

  // So do GetServer calls, more often than the fast path's heartbeat debounce (idle / 10 here).
  for (let deadline = Date.now() + 3000; Date.now() < deadline;) {
    expect(await alice.getServer(workspace)).toMatchObject({ sessionId: session.sessionId, agentAddress: session.agentAddress });
    await new Promise((r) => setTimeout(r, 30));
  }
  expect((await alice.describeSession(session.sessionId)).phase).toBe('READY');

  // Idle: suspended, agent stopped, volume kept.
  await waitFor(async () => (await alice.describeSession(session.sessionId)).phase === 'SUSPENDED', 10_000);
  expect(await stack().worker.backend.listAgents()).toHaveLength(0);
  fs.writeFileSync(volumeFile(session.volume, 'bazel-cache-marker'), 'warm');

  // GetServer resumes the same session on the same volume.
  const resumed = await alice.getServer(workspace);
  expect(resumed).toMatchObject({ sessionId: session.sessionId, phase: 'READY', volume: session.volume });
  expect(fs.readFileSync(volumeFile(session.volume, 'bazel-cache-marker'), 'utf8')).toBe('warm');
  expect(await stack().worker.backend.listAgents()).toHaveLength(1);

  const ended = await alice.endSession(session.sessionId);
  expect(ended).toMatchObject({ phase: 'ENDED', endReason: 'ended', agentAddress: null });
  expect(await stack().worker.backend.listAgents()).toHaveLength(0);
  expect(fs.existsSync(path.join(stack().config.home, 'namespaces', session.namespace))).toBe(false);
  expect(await stack().worker.store.get(session.sessionId)).toMatchObject({ phase: 'ENDED', endReason: 'ended' });
  // The volume outlives the session: the next one for this workspace starts warm.
  expect(fs.existsSync(volumeFile(session.volume, 'bazel-cache-marker'))).toBe(true);

  // A new GetServer is a new session.
  const next = await alice.getServer(workspace);
  expect(next.sessionId).not.toBe(session.sessionId);
  expect(next.volume).toBe(session.volume);
  await alice.endSession(next.sessionId);
});

test("the SDK's activation watchdog outlasts a host stall: when it fires it crashes the whole worker (chaos worker-freeze)", () => {
  // The option is outside the SDK's types (services/worker/worker.ts): this fails if an upgrade stops reading it.
  expect(stack().worker.worker.options.isolateExecutionTimeoutMs).toBe(60_000);
});

test('sessions are listed for their owner only; operators see everyone', async () => {
  const bob = await stack().client('bob');
  const carol = await stack().client('carol');
  const operator = await stack().client('ops', { operator: true });
  const session = await bob.getServer(stack().workspace());

  expect((await bob.listSessions()).map((s) => s.sessionId)).toEqual([session.sessionId]);
  expect(await carol.listSessions()).toEqual([]);
  await expect(carol.listSessions({ allUsers: true })).rejects.toMatchObject({ code: 7 }); // PERMISSION_DENIED
  expect((await operator.listSessions({ allUsers: true })).map((s) => s.sessionId)).toContain(session.sessionId);
  await expect(carol.describeSession(session.sessionId)).rejects.toMatchObject({ code: 5 }); // NOT_FOUND
  await expect(carol.endSession(session.sessionId)).rejects.toMatchObject({ code: 5 });

  expect((await operator.endSession(session.sessionId)).phase).toBe('ENDED');
  expect(await bob.listSessions()).toEqual([]);
  expect((await bob.listSessions({ includeFinished: true }))[0]).toMatchObject({ sessionId: session.sessionId, phase: 'ENDED' });
});

test('a heartbeat to a suspended session resumes it', async () => {
  const lee = await stack().client('lee');
  const session = await lee.getServer(stack().workspace());
  await waitFor(async () => (await lee.describeSession(session.sessionId)).phase === 'SUSPENDED', 10_000, 'idle suspend');
  await lee.heartbeat(session.sessionId);
  await waitFor(async () => (await lee.describeSession(session.sessionId)).phase === 'READY', 10_000, 'resume');
  expect(await stack().worker.backend.listAgents()).toHaveLength(1);
  await lee.endSession(session.sessionId);
});
