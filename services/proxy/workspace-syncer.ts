/**
 * Keeps the agent's copy in step with the developer's workspace: the first sync onto an agent is a
 * full one, later ones send what the workspace watch saw change since the last, and build on it by
 * name (base_sync_id). When the agent's copy is not that sync any more (another machine synced the
 * same workspace path, or the copy drifted), the agent refuses and the sync starts over in full.
 */
import type { AgentClient } from '../../gen/proto/rbs/v1/Agent';
import { StaleBaseError, syncWorkspace } from './sync';
import { watchWorkspace } from './workspace-watch';

export interface WorkspaceSyncer {
  /** Syncs what changed (or nothing) onto the session's agent and returns the sync a command should name. */
  sync(agent: AgentClient, target: SyncTarget, signal?: AbortSignal): Promise<string>;
  /** The agent lost track of our last sync: the next one sends everything. */
  markDirty(): void;
  close(): void;
}

/** Where a sync lands: a session's agent, by the address the session gave (a replaced agent has another). */
export interface SyncTarget {
  sessionId: string;
  agentAddress: string;
}

export function workspaceSyncer(workspace: string, log: (message: string) => void): WorkspaceSyncer {
  // Watching starts before the first sync, so nothing edited during a sync goes unnoticed.
  const changes = watchWorkspace(workspace, log);
  /** The last sync that completed, and where: what a command runs against when nothing changed. */
  let synced: (SyncTarget & { syncId: string }) | null = null;
  /**
   * Whether the agent's copy is known to be that sync. Until it is (a new proxy or session, a
   * failed sync, a refusal), a full sync compares content: another machine's file of the same size
   * and mtime would pass rsync's quick check.
   */
  let trusted = false;

  return {
    async sync(agent, target, signal) {
      const { sessionId } = target;
      await changes.ready;
      const taken = await changes.take(); // includes edits made just before this command
      // An agent this proxy has not synced yet (a new session, or the agent moved or was replaced)
      // holds a copy this proxy knows nothing of: it gets everything, compared by content.
      const same = synced?.sessionId === sessionId && synced.agentAddress === target.agentAddress;
      if (!same) trusted = false;
      const base = same ? synced!.syncId : undefined;
      const changed = base ? taken : { kind: 'everything' as const };
      if (changed.kind === 'none') return base!;
      try {
        const paths = changed.kind === 'paths' ? changed.paths : undefined;
        let what = `${paths?.length} changed paths`;
        let how = '';
        const full = () => {
          what = 'everything';
          if (!trusted) how = ", by content: the agent's copy may not be this proxy's last sync";
          return syncWorkspace({ workspace, agent, sessionId, compareContent: !trusted, signal });
        };
        const done = await (paths ? syncWorkspace({ workspace, agent, sessionId, changed: paths, baseSyncId: base, signal }) : full()).catch((err: Error) => {
          if (!(err instanceof StaleBaseError) || signal?.aborted) throw err;
          log(`${err.message}: syncing everything`);
          trusted = false;
          return full();
        });
        log(`synced ${what} in ${done.ms} ms${how}`);
        synced = { ...target, syncId: done.syncId };
        trusted = true;
        return done.syncId;
      } catch (err) {
        changes.markDirty();
        trusted = false;
        throw err;
      }
    },
    markDirty() {
      changes.markDirty();
      trusted = false;
    },
    close: () => changes.close(),
  };
}
