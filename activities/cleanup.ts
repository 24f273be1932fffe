/** Finding what no live session owns, for the scheduled cleanup workflow. */
import type { Client } from '@temporalio/client';
import type { ComputeBackend, RunningAgent } from '../lib/compute/backend';
import { TERMINAL_PHASES, SESSION_PHASES } from '../lib/domain';
import type { SessionStore } from '../lib/store/session-store';
import { SESSION_ID } from '../workflows/search-attributes';

export interface CleanupDeps {
  backend: ComputeBackend;
  store: SessionStore;
  temporal: Client;
  /** Younger things are left alone: their workflow may not be visible in listings yet. */
  orphanGraceMs: number;
}

export interface Orphans {
  namespaces: string[];
  agents: RunningAgent[];
  sessionRows: string[];
}

const LIVE_PHASES = SESSION_PHASES.filter((p) => !TERMINAL_PHASES.includes(p));

export function createCleanupActivities({ backend, store, temporal, orphanGraceMs }: CleanupDeps) {
  /** Ids of the sessions whose workflows run now. */
  async function liveSessionIds(): Promise<Set<string>> {
    const ids = new Set<string>();
    const query = `WorkflowType = 'sessionWorkflow' AND ExecutionStatus = 'Running'`;
    for await (const wf of temporal.workflow.list({ query })) {
      const sessionId = wf.typedSearchAttributes.get(SESSION_ID);
      if (sessionId) ids.add(sessionId);
    }
    return ids;
  }

  return {
    /**
     * Resources are listed before live sessions, so anything listed was created before the
     * liveness check; the grace period covers sessions not yet visible in the workflow listing.
     */
    async findOrphans(): Promise<Orphans> {
      const cutoff = Date.now() - orphanGraceMs;
      const [namespaces, agents, rows] = await Promise.all([
        backend.listNamespaces(),
        backend.listAgents(),
        store.list({ phases: LIVE_PHASES }),
      ]);
      const live = await liveSessionIds();
      const orphan = (sessionId: string, since: Date) => !live.has(sessionId) && since.getTime() < cutoff;
      return {
        namespaces: namespaces.filter((n) => orphan(n.sessionId, n.createdAt)).map((n) => n.namespace),
        agents: agents.filter((a) => orphan(a.sessionId, a.startedAt)),
        sessionRows: rows.filter((r) => orphan(r.sessionId, r.updatedAt)).map((r) => r.sessionId),
      };
    },

    async killAgent(agent: RunningAgent): Promise<void> {
      await backend.killAgent(agent);
    },
  };
}
