/**
 * Knows what in the developer's workspace changed since the last sync, so a sync walks only that
 * (or nothing). One inotify watch per directory: events name the entry that changed, and a new
 * directory is watched as soon as it appears (the sync sends it whole, so files created in it
 * before its watch began are not missed). When in doubt, the answer is "everything".
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { canSyncOnly } from './sync';

export type WorkspaceChanges = { kind: 'none' } | { kind: 'everything' } | { kind: 'paths'; paths: string[] };

export interface WorkspaceWatch {
  /** Resolves once every directory is watched: from then on no change goes unnoticed. */
  readonly ready: Promise<void>;
  /** What changed since the last take; taking it starts a new round. Starts at everything. */
  take(): WorkspaceChanges;
  /** The sync of what was taken failed, or the agent lost track: sync everything next time. */
  markDirty(): void;
  close(): void;
}

/** Past this many changed paths a full rsync pass is as cheap as naming them. */
const MAX_PATHS = 1000;

export function watchWorkspace(workspace: string, log: (message: string) => void): WorkspaceWatch {
  const root = path.resolve(workspace);
  const watchers = new Map<string, fs.FSWatcher>();
  let everything = true;
  let changed = new Set<string>();
  let broken = false;

  const giveUp = (why: string) => {
    if (!broken) log(`cannot watch ${root} (${why}): syncing everything before every command`);
    broken = true;
    for (const watcher of watchers.values()) watcher.close();
    watchers.clear();
  };

  const record = (file: string) => {
    if (everything || neverSynced(file)) return;
    if (!canSyncOnly(file) || changesFilters(file) || changed.size >= MAX_PATHS) everything = true;
    else changed.add(file);
  };

  async function watchTree(dir: string): Promise<void> {
    if (broken || watchers.has(dir)) return;
    const absolute = path.join(root, dir);
    let watcher: fs.FSWatcher;
    try {
      watcher = fs.watch(absolute, { persistent: false }, (_event, name) => {
        if (name === null) return void (everything = true);
        const file = dir === '' ? name.toString() : `${dir}/${name}`;
        record(file);
        void watchIfDirectory(file);
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // gone already: its parent saw that
      return giveUp((err as Error).message);
    }
    // The directory itself went away: its parent's watch reports the path.
    watcher.on('error', () => unwatchTree(dir));
    watchers.set(dir, watcher);
    let entries: fs.Dirent[];
    try {
      entries = await fs.promises.readdir(absolute, { withFileTypes: true });
    } catch {
      return unwatchTree(dir);
    }
    const subdirs = entries.filter((e) => e.isDirectory()).map((e) => (dir === '' ? e.name : `${dir}/${e.name}`));
    await Promise.all(subdirs.filter((sub) => !neverSynced(sub)).map(watchTree));
  }

  async function watchIfDirectory(file: string): Promise<void> {
    if (neverSynced(file)) return;
    const stat = await fs.promises.lstat(path.join(root, file)).catch(() => null);
    if (stat?.isDirectory()) await watchTree(file);
    else unwatchTree(file);
  }

  function unwatchTree(dir: string): void {
    for (const [watched, watcher] of watchers) {
      if (watched === dir || watched.startsWith(`${dir}/`)) {
        watcher.close();
        watchers.delete(watched);
      }
    }
  }

  const ready = watchTree('').catch((err: Error) => giveUp(err.message));
  return {
    ready,
    take() {
      const taken: WorkspaceChanges =
        everything || broken ? { kind: 'everything' } : changed.size === 0 ? { kind: 'none' } : { kind: 'paths', paths: [...changed] };
      everything = false;
      changed = new Set();
      return taken;
    },
    markDirty() {
      everything = true;
    },
    close() {
      broken = true;
      for (const watcher of watchers.values()) watcher.close();
      watchers.clear();
    },
  };
}

/**
 * Paths the sync never sends (lib/sync/filters): changes there need no sync. A local Bazel in the
 * same workspace rewrites its bazel-* links on every build, and git churns .git.
 */
function neverSynced(file: string): boolean {
  const [top] = file.split('/');
  return top.startsWith('bazel-') || top === '.git';
}

/** A changed ignore file changes what the sync sends everywhere below it. */
function changesFilters(file: string): boolean {
  const name = path.basename(file);
  return name === '.gitignore' || name === '.bazelignore';
}
