/**
 * No lost or foreign changes: the proxy's workspace syncer (its real watch and real rsync) against a
 * real agent server. A burst larger than the inotify queue, a copy changed on the agent outside a
 * sync, and two machines syncing one workspace path all end with the agent's copy exactly the
 * syncing machine's tree, compared by content hash, before any command runs on it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { type WorkspaceSyncer, workspaceSyncer } from '../../services/proxy/workspace-syncer';
import { type Fixture, SESSION, snapshot, startFixture, write, writeTree } from './fixture';

const QUEUE = '/proc/sys/fs/inotify/max_queued_events';
/** The inotify queue of this process's watcher (agent and proxies share one) while the tests run. */
const SMALL_QUEUE = 256;

let f: Fixture;
let logged: string[];
const syncers: WorkspaceSyncer[] = [];

/** A proxy on a machine whose workspace is `dir`. */
function machine(dir: string): { dir: string; syncer: WorkspaceSyncer; sync(agentAddress?: string): Promise<string> } {
  fs.mkdirSync(dir, { recursive: true });
  const syncer = workspaceSyncer(dir, path.join(dir, '..', 'output-base'), (message) => logged.push(message));
  syncers.push(syncer);
  return {
    dir,
    syncer,
    async sync(agentAddress = f.agent.address) {
      const client = f.client();
      try {
        return await syncer.sync(client, { sessionId: SESSION, agentAddress });
      } finally {
        client.close();
      }
    },
  };
}

/** The agent's refusal of a Run naming `syncId` (it never reaches Bazel). */
async function refusal(syncId: string): Promise<grpc.StatusObject> {
  const client = f.client();
  try {
    const call = client.run({ request: { arg: [Buffer.from('version')] }, clientWorkspace: '/laptop/ws', syncId });
    return await new Promise((resolve) => {
      call.on('error', () => undefined);
      call.on('status', resolve);
    });
  } finally {
    client.close();
  }
}

/** Whether a Run naming `syncId` would get past the agent's check now (the check itself, without a Bazel). */
async function accepted(syncId: string): Promise<boolean> {
  await f.agent.drift.settle();
  return f.agent.syncs.lastCompleted() === syncId;
}

beforeAll(async () => {
  // The queue size is fixed when an inotify instance is made: small for this process's watcher only.
  const queue = fs.readFileSync(QUEUE, 'utf8');
  try {
    fs.writeFileSync(QUEUE, `${SMALL_QUEUE}\n`);
    f = await startFixture();
    await f.agent.drift.ready;
  } finally {
    fs.writeFileSync(QUEUE, queue);
  }
});
afterAll(async () => {
  syncers.forEach((s) => s.close());
  await f?.stop();
});
beforeEach(() => {
  logged = [];
  f.reset();
});

test('a burst of changes larger than the inotify queue: the next sync leaves the exact new tree', async () => {
  const laptop = machine(path.join(f.root, 'burst'));
  writeTree(laptop.dir, 3000, () => 64);
  await laptop.sync();
  expect(snapshot(f.workspace)).toEqual(snapshot(laptop.dir));

  // As a big checkout does: every file rewritten, some gone, some new, far more events than the queue holds.
  writeTree(laptop.dir, 3000, () => 65);
  for (let i = 0; i < 3000; i += 30) fs.rmSync(path.join(laptop.dir, `d${Math.floor(i / 100)}`, `f${i}.txt`));
  write(laptop.dir, Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`new/n${i}.txt`, `new ${i}`])));
  const syncId = await laptop.sync();
  expect(logged.at(-1)).toMatch(/^synced everything in/);
  expect(snapshot(f.workspace)).toEqual(snapshot(laptop.dir));
  expect(await accepted(syncId)).toBe(true);
});

test('a source changed on the agent outside a sync is refused before the next command, then put right', async () => {
  const laptop = machine(path.join(f.root, 'drift'));
  write(laptop.dir, { 'src/a.c': 'int a = 1;\n', 'src/b.c': 'int b = 2;\n', BUILD: 'cc_library(name = "ab")\n' });
  const first = await laptop.sync();
  // Bazel's own convenience links on the agent are not drift.
  fs.symlinkSync('/nonexistent', path.join(f.workspace, 'bazel-out'));
  expect(await accepted(first)).toBe(true);

  // Same size, and its mtime put back: rsync's quick check alone would never send it again.
  const remote = path.join(f.workspace, 'src', 'a.c');
  const { atime, mtime } = fs.statSync(remote);
  fs.writeFileSync(remote, 'int a = 9;\n');
  fs.utimesSync(remote, atime, mtime);
  const refused = await refusal(first);
  expect(refused.code).toBe(grpc.status.FAILED_PRECONDITION);
  expect(refused.details).toContain("the agent's copy of the workspace changed outside a sync (src/a.c)");

  // The relay's answer to that refusal: everything again, after which the copy is exact.
  laptop.syncer.markDirty();
  const second = await laptop.sync();
  expect(snapshot(f.workspace)).toEqual({ ...snapshot(laptop.dir), 'bazel-out': '-> /nonexistent' });
  expect(await accepted(second)).toBe(true);

  // A build writing into the source tree, then an edit on the laptop: the incremental sync is refused, a full one follows.
  write(f.workspace, { 'src/generated.h': 'left by a build' });
  fs.appendFileSync(path.join(laptop.dir, 'src', 'b.c'), '// edited\n');
  const third = await laptop.sync();
  expect(logged.join('\n')).toMatch(/builds on sync .*changed outside a sync \(src\/generated\.h\): sync everything/);
  expect(snapshot(f.workspace)).toEqual({ ...snapshot(laptop.dir), 'bazel-out': '-> /nonexistent' });
  expect(await accepted(third)).toBe(true);
});

test("the links a command's --symlink_prefix names are not drift once it runs; a source put in their place as a link into the execroot is", async () => {
  const laptop = machine(path.join(f.root, 'prefixed'));
  write(laptop.dir, { 'src/a.c': 'int a = 1;\n', BUILD: 'cc_library(name = "a")\n' });
  const first = await laptop.sync();
  const execroot = path.join(path.dirname(f.workspace), 'output_base', 'execroot', '__main__');
  f.agent.drift.expectLinksOf(['build', '--symlink_prefix=cl-', '//:a']);
  for (const name of ['cl-bin', 'cl-out', `cl-${path.basename(f.workspace)}`, 'bazel-out']) fs.symlinkSync(execroot, path.join(f.workspace, name));
  expect(await accepted(first)).toBe(true);

  fs.rmSync(path.join(f.workspace, 'src'), { recursive: true });
  fs.symlinkSync(execroot, path.join(f.workspace, 'src'));
  const refused = await refusal(first);
  expect(refused.details).toContain("the agent's copy of the workspace changed outside a sync (src");
});

test('an empty --symlink_prefix names links `bin` and `out`: a source of that name changed on the agent is still drift', async () => {
  const laptop = machine(path.join(f.root, 'unprefixed'));
  write(laptop.dir, { 'src/a.c': 'int a = 1;\n', out: 'a source named out\n' });
  const first = await laptop.sync();
  f.agent.drift.expectLinksOf(['build', '--symlink_prefix=', '//:a']);
  expect(await accepted(first)).toBe(true); // the watch has caught up with the full sync: it sees what follows
  fs.appendFileSync(path.join(f.workspace, 'out'), 'changed by a build\n');
  expect((await refusal(first)).details).toContain("the agent's copy of the workspace changed outside a sync (out)");
});

test("two machines on one workspace path: each one's sync after the other's is a full one", async () => {
  const a = machine(path.join(f.root, 'machine-a'));
  const b = machine(path.join(f.root, 'machine-b'));
  write(a.dir, { 'main.c': 'A main\n', 'only-a.c': 'A\n' });
  write(b.dir, { 'main.c': 'B main, longer\n', 'only-b.c': 'B\n' });

  const fromA = await a.sync();
  expect(snapshot(f.workspace)).toEqual(snapshot(a.dir));
  const fromB = await b.sync(); // its first: full
  expect(snapshot(f.workspace)).toEqual(snapshot(b.dir));
  expect((await refusal(fromA)).code).toBe(grpc.status.FAILED_PRECONDITION); // A's state is gone

  // A edits one file: its incremental sync would land on B's files, so the agent refuses it. Its
  // main.c now has the size and mtime of B's: only a comparison of content tells them apart.
  fs.writeFileSync(path.join(a.dir, 'main.c'), 'A main, edited\n');
  const { atime, mtime } = fs.statSync(path.join(b.dir, 'main.c'));
  fs.utimesSync(path.join(a.dir, 'main.c'), atime, mtime);
  const again = await a.sync();
  expect(logged.join('\n')).toMatch(/builds on sync .*but the workspace holds sync .*: syncing everything/);
  expect(snapshot(f.workspace)).toEqual(snapshot(a.dir));
  expect(await accepted(again)).toBe(true);
  expect((await refusal(fromB)).code).toBe(grpc.status.FAILED_PRECONDITION);
});

test('an agent replaced within the session (another address, the same volume) gets a full sync by content', async () => {
  const a = machine(path.join(f.root, 'machine-replaced'));
  write(a.dir, { 'main.c': 'main\n' });
  await a.sync();
  fs.writeFileSync(path.join(a.dir, 'main.c'), 'main, edited\n');
  await a.sync();
  expect(logged.pop()).toMatch(/^synced 1 changed paths/);
  // The session now names another agent: what this proxy synced onto the last one proves nothing.
  const after = await a.sync('127.0.0.1:1');
  expect(logged.pop()).toMatch(/^synced everything in \d+ ms, by content/);
  expect(snapshot(f.workspace)).toEqual(snapshot(a.dir));
  expect(await accepted(after)).toBe(true);
});
