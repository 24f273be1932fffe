/**
 * The proxy's syncWorkspace against a real agent server: real rsync at both ends, carried by the
 * agent's mTLS Sync stream.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { waitFor } from '../harness/wait';
import { type Fixture, PUSH_ARGS, SESSION, inodes, openSync, rsyncsIn, snapshot, startFixture, write, writeTree } from './fixture';

let f: Fixture;

beforeAll(async () => {
  f = await startFixture();
});
afterAll(() => f.stop());
beforeEach(() => f.reset());

test('an initial sync of 2,000 files makes a byte-identical copy', async () => {
  writeTree(f.source, 2000, (i) => (i * 37) % 9000);
  fs.chmodSync(path.join(f.source, 'd0', 'f1.txt'), 0o755);
  fs.symlinkSync('d1/f100.txt', path.join(f.source, 'alias.txt'));

  const { syncId } = await f.sync();

  expect(Object.keys(snapshot(f.workspace))).toHaveLength(2000 + 20 + 1);
  expect(snapshot(f.workspace)).toEqual(snapshot(f.source));
  expect(fs.readlinkSync(path.join(f.workspace, 'alias.txt'))).toBe('d1/f100.txt');
  expect(f.agent.syncs.lastCompleted()).toBe(syncId);
});

test('after an edit only the edited file travels; deletions and mode changes follow', async () => {
  writeTree(f.source, 500, () => 200);
  await f.sync();
  const before = inodes(f.workspace);

  fs.appendFileSync(path.join(f.source, 'd1', 'f150.txt'), 'edited');
  fs.rmSync(path.join(f.source, 'd2', 'f250.txt'));
  fs.chmodSync(path.join(f.source, 'd3', 'f350.txt'), 0o755);
  await f.sync();

  expect(snapshot(f.workspace)).toEqual(snapshot(f.source));
  const after = inodes(f.workspace);
  const rewritten = [...after].filter(([name, ino]) => before.get(name) !== ino).map(([name]) => name);
  expect(rewritten).toEqual([path.join('d1', 'f150.txt')]);
  expect(after.has(path.join('d2', 'f250.txt'))).toBe(false);
});

test('a sync of named changes walks only them, and ends where a full sync would', async () => {
  gitInit(f.source);
  writeTree(f.source, 300, () => 100);
  write(f.source, { '.gitignore': '*.log\n', 'keep/a.txt': 'a', 'gone/x.txt': 'x', 'gone/deep/y.txt': 'y', 'odd/[x]*?.txt': '1' });
  const base = await f.sync();
  const before = inodes(f.workspace);

  fs.appendFileSync(path.join(f.source, 'd1', 'f150.txt'), 'edited');
  fs.appendFileSync(path.join(f.source, 'd2', 'f250.txt'), 'edited, not named'); // the watch would name it; here it shows what is walked
  fs.rmSync(path.join(f.source, 'gone'), { recursive: true });
  write(f.source, { 'new/tree/z.txt': 'z', 'new/tree/debug.log': 'ignored', 'odd/[x]*?.txt': '2', 'd1/skip.log': 'ignored' });
  const changed = ['d1/f150.txt', 'gone', 'new', 'odd/[x]*?.txt', 'd1/skip.log'];
  const named = await f.sync({ changed, baseSyncId: base.syncId });

  const remote = snapshot(f.workspace);
  const local = snapshot(f.source);
  expect(remote['d1/f150.txt']).toBe(local['d1/f150.txt']);
  expect(remote['odd/[x]*?.txt']).toBe(local['odd/[x]*?.txt']);
  expect(remote['new/tree/z.txt']).toBe(local['new/tree/z.txt']);
  expect(remote['d2/f250.txt']).not.toBe(local['d2/f250.txt']); // not named, so not walked
  expect(Object.keys(remote).filter((name) => name.startsWith('gone') || name.endsWith('.log'))).toEqual([]);
  const rewritten = [...inodes(f.workspace)].filter(([name, ino]) => before.has(name) && before.get(name) !== ino).map(([name]) => name);
  expect(rewritten.sort()).toEqual(['d1/f150.txt', 'odd/[x]*?.txt']);

  await f.sync({ changed: ['d2/f250.txt'], baseSyncId: named.syncId });
  const sent = Object.entries(local).filter(([name]) => !name.endsWith('.log') && name !== '.git' && !name.startsWith('.git/'));
  expect(snapshot(f.workspace)).toEqual(Object.fromEntries(sent));
});

test('paths a change list cannot express are refused, for a full sync instead', async () => {
  for (const bad of ['../up', '/abs', 'a/../b', 'back\\slash', 'new\nline', '', 'a//b', 'not-utf8-\uFFFD']) {
    await expect(f.sync({ changed: [bad], baseSyncId: 'base' })).rejects.toThrow('sync everything instead');
  }
});

test('ignored files, .git and top-level bazel-* links stay home; .bazelignore removes nothing; what a build left in the copy goes', async () => {
  gitInit(f.source);
  write(f.source, {
    'BUILD.bazel': 'filegroup(name = "all")',
    'pkg/lib.cc': 'int f();',
    'pkg/lib.o': 'object code',
    'scratch/notes': 'mine',
    '.gitignore': '*.o\n/scratch/\n',
    '.bazelignore': 'node_modules\n',
    'node_modules/dep/index.js': 'module.exports = 1',
    'pkg/bazel-not-top-level': 'kept: only top-level bazel-* are links',
  });
  fs.symlinkSync(f.canary, path.join(f.source, 'bazel-out'));
  fs.symlinkSync(f.source, path.join(f.source, 'bazel-source'));

  await f.sync();
  await f.agent.drift.settle(); // as the command after a sync does: later writes are not the sync's
  // Written outside a sync, even where the .gitignore files exclude: the laptop has none of it.
  write(f.workspace, { 'pkg/built.o': 'left by a build', 'scratch/remote': 'left by a build' });
  await f.sync();

  expect(Object.keys(snapshot(f.workspace)).sort()).toEqual([
    '.bazelignore',
    '.gitignore',
    'BUILD.bazel',
    'node_modules',
    'node_modules/dep',
    'node_modules/dep/index.js',
    'pkg',
    'pkg/bazel-not-top-level',
    'pkg/lib.cc',
  ]);
});

test('the ledger names only a sync that completed, and forgets it when another starts', async () => {
  write(f.source, { 'a.txt': 'a' });
  const { syncId } = await f.sync({ syncId: 'sync-1' });
  expect(syncId).toBe('sync-1');
  expect(f.agent.syncs.lastCompleted()).toBe('sync-1');

  // A refused sync writes nothing, so the workspace still matches sync-1.
  const refused = await f.raw([{ start: { syncId: 'sync-2', serverArgs: ['--server', '--sender', '.', '.'] } }]);
  expect(refused.status.code).toBe(grpc.status.INVALID_ARGUMENT);
  expect(f.agent.syncs.lastCompleted()).toBe('sync-1');

  // rsync starts, then its peer hangs up before speaking: it fails, and the workspace matches nothing.
  const hungUp = await f.raw([{ start: { syncId: 'sync-3', serverArgs: PUSH_ARGS } }, { eof: true }]);
  expect(hungUp.status.code).toBe(grpc.status.OK);
  expect(hungUp.received.at(-1)?.exit?.code).not.toBe(0);
  expect(f.agent.syncs.lastCompleted()).toBeNull();

  await f.sync({ syncId: 'sync-4' });
  expect(f.agent.syncs.lastCompleted()).toBe('sync-4');
});

test('one sync at a time; a proxy stream cancelled mid-sync kills rsync', async () => {
  write(f.source, { 'a.txt': 'a' });
  await f.sync({ syncId: 'before' });
  const call = openSync(f.agent.address, f.proxyTls);
  call.on('error', () => undefined); // the cancellation
  call.write({ start: { syncId: 'cancelled', serverArgs: PUSH_ARGS } });
  await waitFor(() => rsyncsIn(f.workspace).length > 0, 10_000, 'rsync to start');
  await expect(f.sync({ syncId: 'concurrent' })).rejects.toThrow(/ABORTED: sync cancelled is still writing/);

  call.cancel();

  await waitFor(() => rsyncsIn(f.workspace).length === 0, 10_000, 'rsync to be killed');
  expect(f.agent.syncs.lastCompleted()).toBeNull();
  await waitFor(async () => (await f.sync({ syncId: 'after' }).catch(() => null)) !== null, 10_000, 'a sync after it');
  expect(f.agent.syncs.lastCompleted()).toBe('after');
});

test("the caller's RSYNC_* variables cannot change what the agent is asked", async () => {
  write(f.source, { 'a.txt': 'a' });
  process.env.RSYNC_PROTECT_ARGS = '1'; // would send the arguments over the protocol, past the agent's check
  try {
    await f.sync({ syncId: 'unprotected' });
  } finally {
    delete process.env.RSYNC_PROTECT_ARGS;
  }
  expect(f.agent.syncs.lastCompleted()).toBe('unprotected');
});

test('only the agent of the session is trusted, and only its proxy may sync', async () => {
  write(f.source, { 'a.txt': 'a' });
  await expect(f.sync({ tls: f.otherProxyTls })).rejects.toThrow(/PERMISSION_DENIED.*may not call the agent/);
  const denied = await f.raw([{ start: { syncId: 'x', serverArgs: PUSH_ARGS } }], f.otherProxyTls);
  expect(denied.status.code).toBe(grpc.status.PERMISSION_DENIED);
  // The proxy of another session expects that session's agent, and this one is not it.
  await expect(f.sync({ tls: f.otherProxyTls, sessionId: 'e1f0c6a4-0b9e-4c1a-9d2e-3f4a5b6c7d8e' })).rejects.toThrow(
    new RegExp(`server is agent of session ${SESSION}, not the expected peer`),
  );
  expect(fs.readdirSync(f.workspace)).toEqual([]);
});

function gitInit(dir: string): void {
  execFileSync('git', ['init', '-q'], { cwd: dir, env: process.env, stdio: 'ignore' });
}
