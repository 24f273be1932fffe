import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { treeBytes } from '../../lib/tree-size';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function tmp(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-tree-size-'));
  dirs.push(dir);
  return dir;
}

test('counts the blocks of every file and directory below, as du does, and follows no link out of the tree', async () => {
  const outside = tmp();
  fs.writeFileSync(path.join(outside, 'big'), Buffer.alloc(4 * 1024 * 1024, 1));
  const dir = tmp();
  fs.mkdirSync(path.join(dir, 'a/b'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'a/b/one'), Buffer.alloc(100_000, 1));
  fs.writeFileSync(path.join(dir, 'two'), Buffer.alloc(50_000, 1));
  fs.symlinkSync(path.join(outside, 'big'), path.join(dir, 'link'));
  fs.symlinkSync(outside, path.join(dir, 'dir-link'));

  const blocks = (p: string) => fs.lstatSync(p).blocks * 512;
  const expected = ['', 'a', 'a/b', 'a/b/one', 'two', 'link', 'dir-link'].map((p) => blocks(path.join(dir, p))).reduce((a, b) => a + b);
  expect(await treeBytes(dir)).toBe(expected);
  expect(expected).toBeGreaterThanOrEqual(150_000);
  expect(expected).toBeLessThan(4 * 1024 * 1024);
});

test('a missing tree has no size; a single file is its own size', async () => {
  const dir = tmp();
  expect(await treeBytes(path.join(dir, 'missing'))).toBeNull();
  fs.writeFileSync(path.join(dir, 'f'), Buffer.alloc(10_000, 1));
  expect(await treeBytes(path.join(dir, 'f'))).toBe(fs.lstatSync(path.join(dir, 'f')).blocks * 512);
});

test('a directory that cannot be read counts for its own blocks, and the rest of the tree still counts', async () => {
  const dir = tmp();
  fs.mkdirSync(path.join(dir, 'locked'));
  fs.writeFileSync(path.join(dir, 'locked/hidden'), Buffer.alloc(10_000, 1));
  fs.writeFileSync(path.join(dir, 'seen'), Buffer.alloc(10_000, 1));
  const all = await treeBytes(dir);
  const hidden = fs.lstatSync(path.join(dir, 'locked/hidden')).blocks * 512;
  fs.chmodSync(path.join(dir, 'locked'), 0);
  try {
    const size = await treeBytes(dir);
    // Root reads any directory: then nothing is hidden.
    if (process.getuid?.() === 0) expect(size).toBe(all);
    else expect(size).toBe(all! - hidden);
  } finally {
    fs.chmodSync(path.join(dir, 'locked'), 0o755);
  }
});
