/**
 * Keeps the agent's copy in step with the developer's workspace: the first sync of a session is a
 * full one, later ones send what the workspace watch saw change since the last, and build on it by
 * name (base_sync_id). When the agent's copy is not that sync any more (another machine synced the
 * same workspace path, or the copy drifted), the agent refuses and the sync starts over in full.
 */
import type { AgentClient } from '../../gen/proto/rbs/v1/Agent';
import { StaleBaseError, syncWorkspace } from './sync';
import { watchWorkspace } from './workspace-watch';

export interface WorkspaceSyncer {
  /** Syncs what changed (or nothing) and returns the sync a command should name. */
  sync(agent: AgentClient, sessionId: string): Promise<string>;
  /** The agent lost track of our last sync: the next one sends everything. */
  markDirty(): void;
  close(): void;
}

export function workspaceSyncer(workspace: string, log: (message: string) => void): WorkspaceSyncer {
  // Watching starts before the first sync, so nothing edited during a sync goes unnoticed.
  const changes = watchWorkspace(workspace, log);
  /** The last sync that completed, per session: what a command runs against when nothing changed. */
  let synced: { sessionId: string; syncId: string } | null = null;

  return {
    async sync(agent, sessionId) {
      await changes.ready;
      const taken = await changes.take(); // includes edits made just before this command
      // A session this proxy has not synced yet (a new one, or the agent moved) gets everything.
      const base = synced?.sessionId === sessionId ? synced.syncId : undefined;
      const changed = base ? taken : { kind: 'everything' as const };
      if (changed.kind === 'none') return base!;
      try {
        const paths = changed.kind === 'paths' ? changed.paths : undefined;
        let what = paths ? `${paths.length} changed paths` : 'everything';
        const done = await syncWorkspace({ workspace, agent, sessionId, changed: paths, baseSyncId: paths && base }).catch((err: Error) => {
          if (!(err instanceof StaleBaseError)) throw err;
          log(`${err.message}: syncing everything`);
          what = 'everything';
          return syncWorkspace({ workspace, agent, sessionId });
        });
        log(`synced ${what} in ${done.ms} ms`);
        synced = { sessionId, syncId: done.syncId };
        return done.syncId;
      } catch (err) {
        changes.markDirty();
        throw err;
      }
    },
    markDirty: () => changes.markDirty(),
    close: () => changes.close(),
  };
}
