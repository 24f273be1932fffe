/**
 * removeTree on what builds leave behind: read-only directories (Go's module cache, Bazel's tree artifacts). As root
 * every unlink succeeds anyway, so the case that matters, a developer's own user, runs in a child process as
 * `nobody` (or as the user running the tests, when not root): there plain fs.rmSync fails with EACCES (the local expiry used to retry that for ever), removeTree does not.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { removeTree } from '../../lib/remove-tree';
import { repoRoot } from '../../lib/local/tools';

/** Root runs the child as nobody; anybody else is an ordinary user already. */
const ORDINARY = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};

/** A tree as a build leaves it: nested read-only directories with files, and a link to a read-only directory outside. */
function buildTree(root: string, outside: string): string {
  const tree = path.join(root, 'volume');
  const deep = path.join(tree, 'go', 'pkg', 'mod', 'example.com@v1.0.0', 'sub');
  fs.mkdirSync(deep, { recursive: true });
  fs.writeFileSync(path.join(deep, 'file.go'), 'package sub\n', { mode: 0o444 });
  fs.mkdirSync(outside, { recursive: true });
  fs.symlinkSync(outside, path.join(tree, 'link-out'));
  for (let dir = deep; dir !== tree; dir = path.dirname(dir)) fs.chmodSync(dir, 0o555);
  fs.chmodSync(outside, 0o555);
  return tree;
}

test('as an ordinary user, removes a tree of read-only directories that fs.rmSync cannot, and nothing the tree links to', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-remove-tree-'));
  fs.chmodSync(root, 0o777);
  try {
    const script = `
      const fs = require('node:fs');
      const { removeTree } = require(${JSON.stringify(path.join(repoRoot(), 'dist', 'lib', 'remove-tree.js'))});
      const build = ${buildTree.toString()};
      const tree = build(${JSON.stringify(root)}, ${JSON.stringify(path.join(root, 'outside'))});
      let plain = 'removed';
      try { fs.rmSync(tree, { recursive: true, force: true }); } catch (err) { plain = err.code; }
      removeTree(tree);
      console.log(JSON.stringify({ plain, gone: !fs.existsSync(tree), outside: (fs.statSync(${JSON.stringify(path.join(root, 'outside'))}).mode & 0o777).toString(8) }));
    `;
    const run = spawnSync(process.execPath, ['-e', `const path = require('node:path');${script}`], { ...ORDINARY, encoding: 'utf8', cwd: root });
    expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: '' });
    expect(JSON.parse(run.stdout)).toEqual({ plain: 'EACCES', gone: true, outside: '555' });
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('names the tree when it cannot be removed at all', () => {
  expect(() => removeTree('/proc/self')).toThrow(/^cannot remove \/proc\/self/);
});

test('a tree that is not there is fine', () => {
  expect(() => removeTree(path.join(os.tmpdir(), 'rbs-no-such-tree-'))).not.toThrow();
});
