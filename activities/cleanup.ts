/** Finding what no live session owns, for the scheduled cleanup workflow. */
import type { Client } from '@temporalio/client';
import type { ComputeBackend, RunningAgent } from '../lib/compute/backend';
import { TERMINAL_PHASES, SESSION_PHASES } from '../lib/domain';
import type { SessionStore } from '../lib/store/session-store';
import { namespaceOfWorkflowId } from '../lib/naming';
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
  async function liveSessions(): Promise<{ namespaces: Set<string>; sessionIds: Set<string> }> {
    const namespaces = new Set<string>();
    const sessionIds = new Set<string>();
    const query = `WorkflowType = 'sessionWorkflow' AND ExecutionStatus = 'Running'`;
    for await (const wf of temporal.workflow.list({ query })) {
      const namespace = namespaceOfWorkflowId(wf.workflowId);
      if (namespace) namespaces.add(namespace);
      const sessionId = wf.typedSearchAttributes.get(SESSION_ID);
      if (sessionId) sessionIds.add(sessionId);
    }
    return { namespaces, sessionIds };
  }

  return {
    async findOrphans(): Promise<Orphans> {
      const cutoff = Date.now() - orphanGraceMs;
      const live = await liveSessions();
      const [namespaces, agents, rows] = await Promise.all([
        backend.listNamespaces(),
        backend.listAgents(),
        store.list({ phases: LIVE_PHASES }),
      ]);
      return {
        namespaces: namespaces
          .filter((n) => !live.namespaces.has(n.namespace) && n.createdAt.getTime() < cutoff)
          .map((n) => n.namespace),
        agents: agents.filter((a) => !live.namespaces.has(a.namespace)),
        sessionRows: rows
          .filter((r) => !live.sessionIds.has(r.sessionId) && r.updatedAt.getTime() < cutoff)
          .map((r) => r.sessionId),
      };
    },

    async killAgent(agent: RunningAgent): Promise<void> {
      await backend.killAgent(agent);
    },
  };
}
