/**
 * Knows whether the developer's workspace may have changed since the last sync, so that a command
 * after no edits skips the sync (a full rsync pass re-reads every file's metadata). Starts dirty;
 * any event, a watcher error or an explicit markDirty makes it dirty again. When in doubt: dirty.
 */
import * as fs from 'node:fs';

export interface WorkspaceWatch {
  /** Whether a sync is needed; taking it marks the workspace clean until the next change. */
  takeDirty(): boolean;
  /** The sync that took the dirt failed, or the agent lost track: sync again next time. */
  markDirty(): void;
  close(): void;
}

export function watchWorkspace(workspace: string, log: (message: string) => void): WorkspaceWatch {
  let dirty = true;
  let watcher: fs.FSWatcher | null = null;
  try {
    watcher = fs.watch(workspace, { recursive: true }, (_event, file) => {
      if (file === null || !neverSynced(file.toString())) dirty = true;
    });
    watcher.on('error', (err) => {
      log(`cannot watch ${workspace} (${err.message}): syncing before every command`);
      watcher?.close();
      watcher = null;
    });
  } catch (err) {
    log(`cannot watch ${workspace} (${(err as Error).message}): syncing before every command`);
  }
  return {
    takeDirty() {
      const was = dirty || watcher === null;
      dirty = false;
      return was;
    },
    markDirty() {
      dirty = true;
    },
    close() {
      watcher?.close();
    },
  };
}

/**
 * Paths the sync never sends (lib/sync/filters): changes there need no sync. A local Bazel in the
 * same workspace rewrites its bazel-* links on every build.
 */
function neverSynced(file: string): boolean {
  const [top] = file.split('/');
  return top.startsWith('bazel-') || top === '.git';
}
