/**
 * Keeps the agent's copy in step with the developer's workspace: the first sync onto an agent is a
 * full one, later ones send what the workspace watch saw change since the last, and build on it by
 * name (base_sync_id). When the agent's copy is not that sync any more (another machine synced the
 * same workspace path, or the copy drifted), the agent refuses and the sync starts over in full.
 */
import type { AgentClient } from '../../gen/proto/rbs/v1/Agent';
import { AgentBusyError, StaleBaseError, syncWorkspace } from './sync';
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

/**
 * How long a sync waits for one that is still writing the agent's copy: being stopped after a
 * Ctrl-C, or cut off by a network partition until the agent's keepalive gives up on it (≤ 22.5 s).
 */
const BUSY_WAIT_MS = 30_000;
const BUSY_RETRY_MS = 200;

/** `outputBase`: the laptop's, whose convenience links in the workspace stay home. */
export function workspaceSyncer(workspace: string, outputBase: string, log: (message: string) => void): WorkspaceSyncer {
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
          return syncWorkspace({ workspace, outputBase, agent, sessionId, compareContent: !trusted, signal });
        };
        const attempt = () =>
          (paths ? syncWorkspace({ workspace, outputBase, agent, sessionId, changed: paths, baseSyncId: base, signal }) : full()).catch((err: Error) => {
            if (!(err instanceof StaleBaseError) || signal?.aborted) throw err;
            log(`${err.message}: syncing everything`);
            trusted = false;
            return full();
          });
        const done = await whileBusy(attempt, log, signal);
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

/** Runs `attempt` again while the agent is still busy with an earlier sync, for up to BUSY_WAIT_MS. */
async function whileBusy<T>(attempt: () => Promise<T>, log: (message: string) => void, signal?: AbortSignal): Promise<T> {
  const deadline = Date.now() + BUSY_WAIT_MS;
  for (let said = false; ; said = true) {
    try {
      return await attempt();
    } catch (err) {
      if (!(err instanceof AgentBusyError) || signal?.aborted || Date.now() > deadline) throw err;
      if (!said) log(`${err.message}: waiting for it`);
      await new Promise((resolve) => setTimeout(resolve, BUSY_RETRY_MS));
    }
  }
}
