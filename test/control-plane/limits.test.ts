/**
 * Per-user limits, from the side of a user who tries to take more than a fair share: each limit
 * reached is RESOURCE_EXHAUSTED with a message naming it, the use and the variable that raises it;
 * attaching to one's own session is never refused; nobody else's use counts against you.
 */
import * as grpc from '@grpc/grpc-js';
import { useStack } from '../harness/stack';
import { waitFor } from '../harness/wait';

const stack = useStack({
  RBS_LIMIT_ACTIVE_SESSIONS: '2',
  RBS_LIMIT_RETAINED_VOLUMES: '3',
  RBS_LIMIT_GET_SERVER_PER_MINUTE: '10',
  RBS_LIMIT_WATCH_STREAMS: '2',
  // Heartbeats are debounced for idle / 10 = 800 ms.
  RBS_IDLE_TIMEOUT_MS: '8000',
});

const exhausted = (details: RegExp) => expect.objectContaining({ code: grpc.status.RESOURCE_EXHAUSTED, details: expect.stringMatching(details) });

async function agentsOf(user: string) {
  const sessions = new Set((await stack().worker.store.list({ user })).map((s) => s.sessionId));
  return (await stack().worker.backend.listAgents()).filter((a) => sessions.has(a.sessionId));
}

test('a user hoarding sessions is refused past RBS_LIMIT_ACTIVE_SESSIONS; attaching to their own session is not', async () => {
  const hoarder = await stack().client('hoarder');
  const [ws1, ws2, ws3] = [stack().workspace(), stack().workspace(), stack().workspace()];
  const first = await hoarder.getServer(ws1);
  await hoarder.getServer(ws2);

  await expect(hoarder.getServer(ws3)).rejects.toEqual(
    exhausted(/^active sessions limit reached: user 'hoarder' has 2 active sessions \(limit 2; RBS_LIMIT_ACTIVE_SESSIONS raises it\)/),
  );
  expect(await agentsOf('hoarder')).toHaveLength(2);

  // At the limit, attaching to a READY session (the fast path) is not a new session.
  expect((await hoarder.getServer(ws1)).sessionId).toBe(first.sessionId);
  // Nor is resuming a suspended one (the path that starts sessions).
  await waitFor(async () => (await stack().worker.store.get(first.sessionId))?.phase === 'SUSPENDED', 20_000, 'the session to suspend');
  expect(await hoarder.getServer(ws1)).toMatchObject({ sessionId: first.sessionId, phase: 'READY' });

  // Another user is not held to the hoarder's use.
  const bystander = await stack().client('bystander');
  expect((await bystander.getServer(ws3)).phase).toBe('READY');
});

test('a burst of concurrent new sessions cannot overshoot RBS_LIMIT_ACTIVE_SESSIONS', async () => {
  const burst = await stack().client('burst');
  const outcomes = await Promise.allSettled([1, 2, 3, 4].map(() => burst.getServer(stack().workspace())));

  expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(2);
  for (const o of outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected')) {
    expect(o.reason).toEqual(exhausted(/^active sessions limit reached: user 'burst' has 2 active sessions/));
  }
  expect(await agentsOf('burst')).toHaveLength(2);
});

test('a user keeping volumes is refused a new one past RBS_LIMIT_RETAINED_VOLUMES, but may reuse one they have', async () => {
  const packrat = await stack().client('packrat');
  const [ws1, ws2, ws3, ws4] = [stack().workspace(), stack().workspace(), stack().workspace(), stack().workspace()];
  // `rbs end` keeps the volume: three volumes, one active session.
  for (const ws of [ws1, ws2, ws3]) await packrat.endSession((await packrat.getServer(ws)).sessionId);

  await expect(packrat.getServer(ws4)).rejects.toEqual(
    exhausted(/^retained volumes limit reached: user 'packrat' has 3 retained volumes \(limit 3; RBS_LIMIT_RETAINED_VOLUMES raises it\)/),
  );
  // A new session on a volume that still exists takes no new volume.
  const again = await packrat.getServer(ws1);
  expect(again.phase).toBe('READY');
  expect(new Set((await stack().worker.store.list({ user: 'packrat' })).map((s) => s.volume)).size).toBe(3);

  const bystander = await stack().client('bystander-volumes');
  expect((await bystander.getServer(ws4)).phase).toBe('READY');
});

test('a user flooding GetServer is refused past RBS_LIMIT_GET_SERVER_PER_MINUTE; others are not', async () => {
  const flooder = await stack().client('flooder');
  const workspace = stack().workspace();
  for (let i = 0; i < 10; i++) await flooder.getServer(workspace);

  await expect(flooder.getServer(workspace)).rejects.toEqual(
    exhausted(
      /^GetServer rate limit reached: user 'flooder' made 10 GetServer calls in the last minute at this orchestrator replica \(limit 10; RBS_LIMIT_GET_SERVER_PER_MINUTE raises it\)$/,
    ),
  );
  const bystander = await stack().client('bystander-rate');
  expect((await bystander.getServer(workspace)).phase).toBe('READY');
});

test('a user opening WatchSession streams is refused past RBS_LIMIT_WATCH_STREAMS until one closes', async () => {
  const watcher = await stack().client('watcher');
  const ready = stack().workspace();
  await watcher.getServer(ready);
  // A workspace without a session: its watch stays open.
  const quiet = stack().workspace();
  const held = [watcher.watch({ workspace: quiet }, () => undefined), watcher.watch({ workspace: quiet }, () => undefined)];
  await new Promise((r) => setTimeout(r, 300)); // for the orchestrator to have opened both

  await expect(watcher.watch({ workspace: ready }, () => undefined).done).rejects.toEqual(
    exhausted(
      /^WatchSession streams limit reached: user 'watcher' has 2 open WatchSession streams at this orchestrator replica \(limit 2; RBS_LIMIT_WATCH_STREAMS raises it\)$/,
    ),
  );
  // Another user's streams are their own.
  const bystander = await stack().client('bystander-watch');
  const theirs = bystander.watch({ workspace: quiet }, () => undefined);

  held[0].cancel();
  await held[0].done;
  await waitFor(
    async () => {
      const phases: string[] = [];
      const ok = await watcher
        .watch({ workspace: ready }, (p) => phases.push(p.phase))
        .done.then(
          () => true,
          () => false,
        );
      return ok && phases.includes('READY');
    },
    5000,
    'a closed stream to free its place',
  );
  for (const stream of [held[1], theirs]) stream.cancel();
  await Promise.all([held[1].done, theirs.done]);
});

test('a user spamming Heartbeat signals the workflow at most once per debounce window, and the workflow records that one in the store', async () => {
  const pulse = await stack().client('pulse');
  const session = await pulse.getServer(stack().workspace());
  const handle = stack().temporal.workflow.getHandle(session.workflowId);
  const signals = async () => (await handle.fetchHistory()).events!.filter((e) => e.workflowExecutionSignaledEventAttributes).length;
  const lastActivity = async () => (await stack().worker.store.get(session.sessionId))!.lastActivityAtMs;

  // Past the window, a heartbeat is told: a signal, which the workflow records in the store.
  await new Promise((r) => setTimeout(r, 900));
  const before = { signals: await signals(), lastActivity: await lastActivity() };
  const start = Date.now();
  expect(await pulse.heartbeat(session.sessionId)).toBe('READY');
  // Inside the window that heartbeat opened (once the workflow has recorded it), heartbeats signal nothing.
  await waitFor(async () => (await lastActivity()) > before.lastActivity, 800, 'the workflow to record the activity');
  for (let i = 0; i < 5; i++) expect(await pulse.heartbeat(session.sessionId)).toBe('READY');
  expect(Date.now()).toBeLessThan((await lastActivity()) + 800); // else the test proves nothing: make the window longer

  expect(await signals()).toBe(before.signals + 1);
  expect(await lastActivity()).toBeGreaterThanOrEqual(start);
});
