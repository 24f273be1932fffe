/**
 * Pushes the developer's workspace to the session's agent with the local rsync (the transport is
 * rsync-transport.ts). A full sync walks the whole tree; when the workspace watch knows which paths
 * changed, the sync walks only those paths and the directories leading to them.
 */
import { randomUUID } from 'node:crypto';
import * as path from 'node:path';
import type { AgentClient } from '../../gen/proto/rbs/v1/Agent';
import { workspaceFilters } from '../../lib/sync/filters';
import { rsyncToAgent } from './rsync-transport';

export { AgentUnreachableError, StaleBaseError } from './rsync-transport';

export interface SyncWorkspaceOptions {
  /** The workspace on this machine. */
  workspace: string;
  /** The mTLS client of the session's agent: the sync rides on its connection. */
  agent: AgentClient;
  sessionId: string;
  /** Names the resulting state for the agent's Run; a fresh one by default. */
  syncId?: string;
  /**
   * Workspace-relative paths (files or whole trees, present or deleted) that are all that changed
   * since the last sync; everything when absent. Paths onlyChangesOf cannot express are refused.
   */
  changed?: string[];
  /**
   * The sync that `changed` is relative to: the agent refuses the sync (StaleBaseError) unless its
   * copy is still exactly that one, so no change list lands on another machine's files.
   */
  baseSyncId?: string;
  /**
   * Compare every file's content, not its size and mtime: for a full sync onto a copy that may not
   * be this proxy's last sync (another machine's files can match in size and mtime, not content).
   */
  compareContent?: boolean;
}

/**
 * What the workspace needs on the agent, which accepts exactly these (services/agent/sync-args.ts):
 * the tree, symlinks, mtimes (they keep rsync's size+mtime quick check exact, so no --checksum
 * reading every file) and the executable bit. Not --perms, --owner, --group or --devices: the
 * laptop's modes, ids and devices mean nothing there. Delta transfer stays on (no --whole-file):
 * the agent is usually across a WAN, and only changed files pay for it. No --compress: it costs
 * CPU at both ends that a fast link does not repay (worth revisiting for slow links).
 */
const RSYNC_FLAGS = ['--recursive', '--links', '--times', '--executability', '--delete'];

export async function syncWorkspace(options: SyncWorkspaceOptions): Promise<{ syncId: string; ms: number }> {
  const { agent, sessionId } = options;
  const syncId = options.syncId ?? randomUUID();
  if (options.changed && !options.baseSyncId) throw new Error(`sync ${syncId} of changed paths needs the sync they changed since (baseSyncId)`);
  const workspace = path.resolve(options.workspace);
  // rsync's quick check compares whole seconds: a same-size edit within the second of the last
  // sync would look unchanged, so paths known to have changed skip it.
  const scope = options.changed ? ['--ignore-times', ...onlyChangesOf(options.changed)] : options.compareContent ? ['--ignore-times'] : [];
  const args = [...RSYNC_FLAGS, ...workspaceFilters(workspace), ...scope, './', 'agent:.'];
  const started = performance.now();
  const what = options.changed ? `${options.changed.length} changed paths of ${workspace}` : workspace;
  await rsyncToAgent({ agent, syncId, baseSyncId: options.baseSyncId, args, cwd: workspace, describe: `sync ${syncId} of ${what} to the agent of session ${sessionId}` });
  return { syncId, ms: Math.round(performance.now() - started) };
}

/** Characters a changed path may hold for onlyChangesOf: others make the caller sync everything. */
const EXPRESSIBLE = /^[^\\\0-\x1f\x7f]+$/;

/** Whether onlyChangesOf can express `changed` exactly. */
export function canSyncOnly(changed: string): boolean {
  return EXPRESSIBLE.test(changed) && !path.isAbsolute(changed) && !changed.split('/').some((part) => part === '..' || part === '' || part === '.');
}

/**
 * Filter rules, placed after the workspace's own (so .gitignore and friends still win), that let
 * rsync into the changed paths and their parent directories and nowhere else. Each path is a file or
 * a whole tree, present or deleted: in the directories it enters, rsync's --delete removes what the
 * sender no longer has, and what the rules exclude is protected from deletion on the receiver.
 */
export function onlyChangesOf(changed: string[]): string[] {
  const rules = new Set<string>();
  for (const file of changed) {
    if (!canSyncOnly(file)) throw new Error(`cannot sync only ${JSON.stringify(file)}: sync everything instead`);
    const parts = file.split('/').map(escapeWildcards);
    for (let depth = 1; depth < parts.length; depth++) rules.add(`--include=/${parts.slice(0, depth).join('/')}/`);
    rules.add(`--include=/${parts.join('/')}`);
    rules.add(`--include=/${parts.join('/')}/***`);
  }
  return [...rules, '--exclude=*'];
}

/** rsync honours backslash escapes in a pattern that has wildcards; every pattern here may get one. */
function escapeWildcards(part: string): string {
  return part.replace(/[*?[]/g, '\\$&');
}
