import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type WorkspaceChanges, type WorkspaceWatch, watchWorkspace } from '../../services/proxy/workspace-watch';

const paths = (...names: string[]): WorkspaceChanges => ({ kind: 'paths', paths: names });

let workspace: string;
let watch: WorkspaceWatch;
let logged: string[];

beforeEach(async () => {
  workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-watch-'));
  fs.mkdirSync(path.join(workspace, 'src', 'deep'), { recursive: true });
  fs.writeFileSync(path.join(workspace, 'src', 'deep', 'old.c'), 'old');
  logged = [];
  watch = watchWorkspace(workspace, (message) => logged.push(message));
  await watch.ready;
});
afterEach(() => {
  watch.close();
  fs.rmSync(workspace, { recursive: true, force: true });
});

/** What the watch reports right after `change` (no waiting: take() catches up), paths in order. */
async function after(change: () => void): Promise<WorkspaceChanges> {
  change();
  const taken = await watch.take();
  return taken.kind === 'paths' ? paths(...taken.paths.sort()) : taken;
}

test('everything at first, then nothing until a change', async () => {
  expect(await watch.take()).toEqual({ kind: 'everything' });
  expect(await watch.take()).toEqual({ kind: 'none' });
  expect(fs.readdirSync(workspace)).toEqual(['src']); // no cookie left behind
});

test('names the files edited, created and deleted, at any depth', async () => {
  await watch.take();
  const changes = await after(() => {
    fs.writeFileSync(path.join(workspace, 'src', 'main.c'), 'int main;');
    fs.appendFileSync(path.join(workspace, 'src', 'deep', 'old.c'), 'edit');
  });
  expect(changes).toEqual(paths('src/deep/old.c', 'src/main.c'));
  expect(await after(() => fs.rmSync(path.join(workspace, 'src', 'deep', 'old.c')))).toEqual(paths('src/deep/old.c'));
  expect(await watch.take()).toEqual({ kind: 'none' });
});

test('a new directory is named, and watched from then on', async () => {
  await watch.take();
  const created = await after(() => {
    fs.mkdirSync(path.join(workspace, 'src', 'new'));
    fs.writeFileSync(path.join(workspace, 'src', 'new', 'f.c'), 'made at once');
  });
  expect(created.kind).toBe('paths');
  expect((created as { paths: string[] }).paths).toContain('src/new'); // the sync sends the tree whole
  expect(await after(() => fs.writeFileSync(path.join(workspace, 'src', 'new', 'f.c'), 'edited later'))).toEqual(paths('src/new/f.c'));
  expect(await after(() => fs.rmSync(path.join(workspace, 'src', 'new'), { recursive: true }))).toMatchObject({
    kind: 'paths',
    paths: expect.arrayContaining(['src/new']),
  });
});

test('what the sync never sends is not a change; ignore files change everything', async () => {
  await watch.take();
  const unsynced = await after(() => {
    fs.symlinkSync('/tmp', path.join(workspace, 'bazel-out'));
    fs.mkdirSync(path.join(workspace, '.git'));
    fs.writeFileSync(path.join(workspace, '.git', 'index'), 'x');
  });
  expect(unsynced).toEqual({ kind: 'none' });
  expect(await after(() => fs.writeFileSync(path.join(workspace, 'src', '.gitignore'), '*.o\n'))).toEqual({ kind: 'everything' });
});

test('a name a change list cannot carry, or too many changes, mean everything', async () => {
  await watch.take();
  expect(await after(() => fs.writeFileSync(path.join(workspace, 'src', 'back\\slash'), 'x'))).toEqual({ kind: 'everything' });
  const many = await after(() => {
    for (let i = 0; i < 1001; i++) fs.writeFileSync(path.join(workspace, 'src', `f${i}`), 'x');
  });
  expect(many).toEqual({ kind: 'everything' });
});

test('markDirty makes the next take everything', async () => {
  await watch.take();
  watch.markDirty();
  expect(await watch.take()).toEqual({ kind: 'everything' });
  expect(logged).toEqual([]);
});

test('a tree made at once (a moved-in tree, mkdir -p) is watched all through', async () => {
  await watch.take();
  // Made elsewhere and moved in: no directory below `moved` is watched until the watch adds it.
  const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-watch-outside-'));
  fs.mkdirSync(path.join(outside, 'a', 'b'), { recursive: true });
  expect(await after(() => fs.renameSync(outside, path.join(workspace, 'src', 'moved')))).toEqual(paths('src/moved'));
  expect(await after(() => fs.writeFileSync(path.join(workspace, 'src', 'moved', 'a', 'b', 'f.c'), 'x'))).toEqual(paths('src/moved/a/b/f.c'));
  await after(() => fs.mkdirSync(path.join(workspace, 'src', 'p', 'q', 'r'), { recursive: true }));
  expect(await after(() => fs.writeFileSync(path.join(workspace, 'src', 'p', 'q', 'r', 'g.c'), 'x'))).toEqual(paths('src/p/q/r/g.c'));
  // Gone and made again: still watched.
  await after(() => fs.rmSync(path.join(workspace, 'src', 'moved'), { recursive: true }));
  await after(() => fs.mkdirSync(path.join(workspace, 'src', 'moved', 'a', 'b'), { recursive: true }));
  expect(await after(() => fs.writeFileSync(path.join(workspace, 'src', 'moved', 'a', 'b', 'h.c'), 'x'))).toEqual(paths('src/moved/a/b/h.c'));
  expect(logged).toEqual([]);
});

test('ignore rules the watch cannot see (.git/info/exclude) change everything', async () => {
  fs.mkdirSync(path.join(workspace, '.git', 'info'), { recursive: true });
  await watch.take();
  expect(await after(() => fs.writeFileSync(path.join(workspace, '.git', 'info', 'exclude'), '*.o\n'))).toEqual({ kind: 'everything' });
  expect(await after(() => fs.writeFileSync(path.join(workspace, '.rbs.json'), '{}'))).toEqual({ kind: 'everything' });
  expect(await after(() => fs.writeFileSync(path.join(workspace, 'src', '.rbs.json'), '{}'))).toEqual(paths('src/.rbs.json'));
});
