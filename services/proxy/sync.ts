/**
 * Pushes the developer's workspace to the session's agent with the local rsync (the transport is
 * rsync-transport.ts). A full sync walks the whole tree; when the workspace watch knows which paths
 * changed, the sync walks only those paths and the directories leading to them.
 */
import { randomUUID } from 'node:crypto';
import * as path from 'node:path';
import type { AgentClient } from '../../gen/proto/rbs/v1/Agent';
import { SOURCE_SET_ARGS, sourceSetRules } from '../../lib/sync/source-set';
import { sourceRulesStamp } from '../../lib/sync/rules-stamp';
import { rsyncToAgent } from './rsync-transport';

export { AgentBusyError, AgentUnreachableError, StaleBaseError } from './rsync-transport';

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
  /** Interrupts the sync (rsync is stopped; the agent refuses a Run naming it). */
  signal?: AbortSignal;
  /** The laptop's output base, whose convenience links in the workspace stay home (sourceSetRules). */
  outputBase?: string;
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
  options.changed?.forEach(checkExpressible);
  const started = performance.now();
  // Changed paths are all there is to sync only while the rules that choose the files are the same.
  const stamp = await sourceRulesStamp(workspace);
  const changed = stampOfLastFullSync.get(workspace) === stamp ? options.changed : undefined;
  const rules = await sourceSetRules(workspace, { changed, outputBase: options.outputBase });
  // rsync's quick check compares whole seconds: a same-size edit within the second of the last
  // sync would look unchanged, so paths known to have changed skip it.
  const scope = changed ? ['--ignore-times', ...onlyChangesOf(changed)] : options.compareContent ? ['--ignore-times'] : [];
  const args = [...RSYNC_FLAGS, ...SOURCE_SET_ARGS, ...scope, './', 'agent:.'];
  const what = changed ? `${changed.length} changed paths of ${workspace}` : workspace;
  const describe = `sync ${syncId} of ${what} to the agent of session ${sessionId}`;
  // Only an incremental sync builds on a base; a full one makes the copy whole whatever it was.
  const baseSyncId = changed ? options.baseSyncId : undefined;
  await rsyncToAgent({ agent, syncId, baseSyncId, args, stdin: rules, cwd: workspace, describe, signal: options.signal });
  if (!changed) stampOfLastFullSync.set(workspace, stamp);
  return { syncId, ms: Math.round(performance.now() - started) };
}

/** Per workspace, the sourceRulesStamp its last full sync was made under. */
const stampOfLastFullSync = new Map<string, string>();

/**
 * Characters a changed path may hold for onlyChangesOf: others make the caller sync everything. A
 * U+FFFD stands for bytes that were not UTF-8, which the path no longer names exactly.
 */
const EXPRESSIBLE = /^[^\\\0-\x1f\x7f\uFFFD]+$/;

/** Whether onlyChangesOf can express `changed` exactly. */
export function canSyncOnly(changed: string): boolean {
  return EXPRESSIBLE.test(changed) && !path.isAbsolute(changed) && !changed.split('/').some((part) => part === '..' || part === '' || part === '.');
}

/**
 * Filter rules, placed after the source set's (so what git ignores stays out), that let
 * rsync into the changed paths and their parent directories and nowhere else. Each path is a file or
 * a whole tree, present or deleted: in the directories it enters, rsync's --delete removes what the
 * sender no longer has, and what the rules exclude is protected from deletion on the receiver.
 */
export function onlyChangesOf(changed: string[]): string[] {
  const rules = new Set<string>();
  for (const file of changed) {
    checkExpressible(file);
    const parts = file.split('/').map(escapeWildcards);
    for (let depth = 1; depth < parts.length; depth++) rules.add(`--include=/${parts.slice(0, depth).join('/')}/`);
    rules.add(`--include=/${parts.join('/')}`);
    rules.add(`--include=/${parts.join('/')}/***`);
  }
  return [...rules, '--exclude=*'];
}

function checkExpressible(file: string): void {
  if (!canSyncOnly(file)) throw new Error(`cannot sync only ${JSON.stringify(file)}: sync everything instead`);
}

/** rsync honours backslash escapes in a pattern that has wildcards; every pattern here may get one. */
function escapeWildcards(part: string): string {
  return part.replace(/[*?[]/g, '\\$&');
}
