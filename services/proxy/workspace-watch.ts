/**
 * Knows what in the developer's workspace changed since the last sync, so a sync walks only that
 * (or nothing). The tree watch (lib/watch/tree-watch) names changed entries; a new directory is
 * named whole (the sync sends it whole). When in doubt, the answer is "everything": a watcher error,
 * a restart, an unwatched directory, more changes than a round should hold, a changed ignore rule.
 */
import { canSyncOnly } from './sync';
import { watchTree } from '../../lib/watch/tree-watch';
import { SETTINGS_FILE } from '../../lib/workspace-settings';
import { settingsFingerprint } from './settings-files';

export type WorkspaceChanges = { kind: 'none' } | { kind: 'everything' } | { kind: 'paths'; paths: string[] };

export interface WorkspaceWatch {
  /** Resolves once the workspace is watched: from then on no change goes unnoticed. */
  readonly ready: Promise<void>;
  /** What changed since the last take, including changes made just before the call; taking it starts a new round. Starts at everything. */
  take(): Promise<WorkspaceChanges>;
  /** The sync of what was taken failed, or the agent lost track: sync everything next time. */
  markDirty(): void;
  close(): void;
}

/**
 * Past this many changed paths a full rsync pass is as cheap as naming them; and a burst this big is
 * what overflows an inotify queue, which the watcher cannot report.
 */
const MAX_PATHS = 1000;

/** Files that decide what the sync sends, wherever they are in the tree. */
const RULE_FILES = new Set(['.gitignore']);
/** …and at the top only. */
const TOP_RULE_FILES = new Set([SETTINGS_FILE]);

export function watchWorkspace(workspace: string, log: (message: string) => void): WorkspaceWatch {
  let everything = true;
  let changed = new Set<string>();
  let rules = settingsFingerprint(workspace);

  const tree = watchTree(
    workspace,
    {
      onChanges(paths) {
        for (const file of paths) {
          if (everything || neverSynced(file)) continue;
          if (!canSyncOnly(file) || changesRules(file) || changed.size >= MAX_PATHS) everything = true;
          else changed.add(file);
        }
      },
      onDoubt(why) {
        log(`${why}: syncing everything`);
        everything = true;
      },
    },
    { ignore: ['.git'] },
  );

  return {
    ready: tree.ready,
    async take() {
      await tree.settle();
      const now = settingsFingerprint(workspace);
      if (now !== rules) everything = true;
      rules = now;
      const taken: WorkspaceChanges = everything ? { kind: 'everything' } : changed.size === 0 ? { kind: 'none' } : { kind: 'paths', paths: [...changed] };
      everything = false;
      changed = new Set();
      return taken;
    },
    markDirty() {
      everything = true;
    },
    close() {
      void tree.close();
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

/** A changed rule file changes what the sync sends everywhere below it. */
function changesRules(file: string): boolean {
  const name = file.slice(file.lastIndexOf('/') + 1);
  return RULE_FILES.has(name) || (name === file && TOP_RULE_FILES.has(name));
}
