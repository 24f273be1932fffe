import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { watchWorkspace } from '../../services/proxy/workspace-watch';

const settle = () => new Promise((r) => setTimeout(r, 200));

test('dirty at first, then only after a change the sync would send', async () => {
  const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-watch-'));
  fs.mkdirSync(path.join(workspace, 'src'));
  const watch = watchWorkspace(workspace, () => undefined);
  try {
    expect(watch.takeDirty()).toBe(true);
    expect(watch.takeDirty()).toBe(false);

    // What a local Bazel or git does in the workspace is never synced: still clean.
    fs.symlinkSync('/tmp', path.join(workspace, 'bazel-out'));
    fs.mkdirSync(path.join(workspace, '.git'));
    fs.writeFileSync(path.join(workspace, '.git', 'index'), 'x');
    await settle();
    expect(watch.takeDirty()).toBe(false);

    fs.writeFileSync(path.join(workspace, 'src', 'main.c'), 'int main;');
    await settle();
    expect(watch.takeDirty()).toBe(true);
    expect(watch.takeDirty()).toBe(false);

    watch.markDirty();
    expect(watch.takeDirty()).toBe(true);
  } finally {
    watch.close();
    fs.rmSync(workspace, { recursive: true, force: true });
  }
});
