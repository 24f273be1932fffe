/** Finding what no live session owns, for the scheduled cleanup workflow. */
import { log } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { ComputeBackend, Removal, RunningAgent } from '../lib/compute/backend';
import { EXPIRY_REASON, TERMINAL_PHASES, SESSION_PHASES } from '../lib/domain';
import type { ManagedVolume } from '../lib/filestore/orphans';
import type { WorkspaceStorage } from '../lib/filestore/workspace-storage';
import type { SessionStore } from '../lib/store/session-store';
import { knownVolumes } from '../lib/retained-volumes';
import { SESSION_ID, SESSION_NAMESPACE } from '../lib/temporal/search-attributes';

export interface CleanupDeps {
  backend: ComputeBackend;
  store: SessionStore;
  temporal: Client;
  /** Younger things are left alone: their workflow may not be visible in listings yet. */
  orphanGraceMs: number;
  /** How long the rows of ended sessions and removed volumes stay in the store. */
  endedRowRetentionMs: number;
  /** The Filestore instances behind the Kubernetes backend's volumes, when RBS_FILESTORE_* are set. */
  workspaceStorage?: Pick<WorkspaceStorage, 'findOrphans'>;
}

export interface Orphans {
  namespaces: string[];
  agents: RunningAgent[];
  sessionRows: string[];
  /** The volume each of sessionRows names (absent in results recorded before it). */
  sessionRowVolumes?: Record<string, string>;
  /** The session each of namespaces was found to be a leftover of (absent in results recorded before it). */
  namespaceSessions?: Record<string, string>;
}

/**
 * RBS's Filestore instances (resource names) that no session's volume accounts for: reported for an
 * operator, never deleted here, since deleting a share cannot be undone.
 */
export interface OrphanedShares {
  /** Created for a volume that is not known. */
  orphans: string[];
  /** Marked as RBS's but without a volume name or share to tell whose. */
  unattributed: string[];
}

const LIVE_PHASES = SESSION_PHASES.filter((p) => !TERMINAL_PHASES.includes(p));

export function createCleanupActivities({ backend, store, temporal, orphanGraceMs, endedRowRetentionMs, workspaceStorage }: CleanupDeps) {
  /**
   * The sessions whose workflows run now: their ids, and their namespaces. A workflow carries its namespace
   * from its start, but its session id only once its first task completes, after the quick steps that create the
   * namespace (local activities): a namespace a running workflow names is its, whoever's id its record bears.
   */
  async function liveSessions(): Promise<{ ids: Set<string>; namespaces: Set<string> }> {
    const ids = new Set<string>();
    const namespaces = new Set<string>();
    const query = `WorkflowType = 'sessionWorkflow' AND ExecutionStatus = 'Running'`;
    for await (const wf of temporal.workflow.list({ query })) {
      const sessionId = wf.typedSearchAttributes.get(SESSION_ID);
      if (sessionId) ids.add(sessionId);
      const namespace = wf.typedSearchAttributes.get(SESSION_NAMESPACE);
      if (namespace) namespaces.add(namespace);
    }
    return { ids, namespaces };
  }

  return {
    /**
     * Resources are listed before live sessions, so anything listed was created before the
     * liveness check; the grace period covers sessions not yet visible in the workflow listing.
     */
    async findOrphans(): Promise<Orphans> {
      const cutoff = Date.now() - orphanGraceMs;
      const [namespaces, agents, rows] = await Promise.all([backend.listNamespaces(), backend.listAgents(), store.list({ phases: LIVE_PHASES })]);
      const live = await liveSessions();
      const orphan = (sessionId: string, sinceMs: number) => !live.ids.has(sessionId) && sinceMs < cutoff;
      // What lives in a running session's namespace is that session's to keep or replace (ensureNamespace, startAgent).
      const orphanIn = (namespace: string, sessionId: string, sinceMs: number) => !live.namespaces.has(namespace) && orphan(sessionId, sinceMs);
      const orphanRows = rows.filter((r) => orphan(r.sessionId, r.updatedAtMs));
      const orphanNamespaces = namespaces.filter((n) => orphanIn(n.namespace, n.sessionId, n.createdAt.getTime()));
      return {
        namespaces: orphanNamespaces.map((n) => n.namespace),
        namespaceSessions: Object.fromEntries(orphanNamespaces.map((n) => [n.namespace, n.sessionId])),
        agents: agents.filter((a) => orphanIn(a.namespace, a.sessionId, a.startedAt.getTime())),
        sessionRows: orphanRows.map((r) => r.sessionId),
        sessionRowVolumes: Object.fromEntries(orphanRows.map((r) => [r.sessionId, r.volume])),
      };
    },

    /**
     * Store rows past their retention: ended sessions' and removed volumes'. For a volume without an
     * owner's row, its session rows are what tell it exists (lib/retained-volumes): they go all
     * together, once the newest says its session expired, which deleted such a volume, or stay until
     * the volume has an owner (findUnownedVolumes). A removed volume's row goes after its sessions'.
     */
    async findExpiredRows(): Promise<{ sessionRows: string[]; volumeRows: string[] }> {
      const cutoff = Date.now() - endedRowRetentionMs;
      const old = (atMs: number) => atMs < cutoff;
      const [sessions, volumes] = await Promise.all([store.list(), store.listVolumes()]);
      const owned = new Set(volumes.map((v) => v.volume));
      const byVolume = new Map<string, typeof sessions>();
      for (const row of sessions) {
        if (!byVolume.has(row.volume)) byVolume.set(row.volume, []);
        byVolume.get(row.volume)!.push(row);
      }
      const sessionRows: string[] = [];
      for (const [volume, rows] of byVolume) {
        // Newest first (store.list).
        const [newest] = rows;
        if (owned.has(volume)) {
          sessionRows.push(...rows.filter((row) => TERMINAL_PHASES.includes(row.phase) && old(row.updatedAtMs)).map((row) => row.sessionId));
        } else if (newest.phase === 'ENDED' && newest.failureReason === EXPIRY_REASON && old(newest.updatedAtMs)) {
          sessionRows.push(...rows.filter((row) => TERMINAL_PHASES.includes(row.phase)).map((row) => row.sessionId));
        }
      }
      const going = new Set(sessionRows);
      const sessionsLeft = (volume: string) => (byVolume.get(volume) ?? []).some((row) => !going.has(row.sessionId));
      return {
        sessionRows,
        volumeRows: volumes.filter((v) => v.state === 'REMOVED' && old(v.updatedAtMs) && !sessionsLeft(v.volume)).map((v) => v.volume),
      };
    },

    /** A removed volume's row, and any pin an operator left on it; not a row a new owner wrote since. */
    async deleteVolumeRecord(volume: string): Promise<void> {
      if (await store.deleteRemovedVolume(volume)) await store.unpinVolume(volume);
    },

    async killAgent(agent: RunningAgent): Promise<Removal> {
      return backend.killAgent(agent);
    },

    /**
     * Reports (and logs, by instance name only: volume names carry user names) RBS's Filestore
     * instances whose volume the store does not know. The cutoff is taken before the store is read, and
     * a session's row and its volume owner's are written before the volume is bound: an instance
     * older than the cutoff belongs to a row this read sees, if any. An instance without a creation time counts as old.
     */
    async findOrphanedShares(): Promise<OrphanedShares> {
      if (!workspaceStorage) return { orphans: [], unattributed: [] };
      const cutoff = Date.now() - orphanGraceMs;
      const [sessions, volumes] = await Promise.all([store.list(), store.listVolumes()]);
      const report = await workspaceStorage.findOrphans(knownVolumes(sessions, volumes));
      const old = (volumes: ManagedVolume[]) => volumes.filter((v) => (v.createdAt?.getTime() ?? 0) < cutoff).map((v) => v.instance);
      const shares = { orphans: old(report.orphans), unattributed: old(report.unattributed) };
      if (shares.orphans.length > 0) {
        log.warn(`Filestore instances of RBS whose volume no session knows (not deleted; an operator decides): ${shares.orphans.join(', ')}`);
      }
      if (shares.unattributed.length > 0) {
        log.warn(`Filestore instances marked as RBS's without a volume name to tell whose: ${shares.unattributed.join(', ')}`);
      }
      return shares;
    },
  };
}
