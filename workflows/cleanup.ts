/**
 * Run by a Temporal Schedule: finds what the backend and the store hold for sessions that no
 * longer have a live workflow, and removes it. Each removal is its own activity, so the history
 * shows exactly what was reconciled.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { createActivities } from '../activities';

type Activities = ReturnType<typeof createActivities>;

const { findOrphans, deleteNamespace, killAgent, deleteSessionRow } = proxyActivities<Activities>({
  startToCloseTimeout: '1m',
  retry: { initialInterval: '1s', maximumAttempts: 5 },
});

export interface CleanupReport {
  namespaces: string[];
  agents: string[];
  sessionRows: string[];
}

export async function cleanupWorkflow(): Promise<CleanupReport> {
  const orphans = await findOrphans();
  await Promise.all(orphans.agents.map((agent) => killAgent(agent)));
  await Promise.all(orphans.namespaces.map((namespace) => deleteNamespace({ namespace })));
  await Promise.all(orphans.sessionRows.map((sessionId) => deleteSessionRow(sessionId)));
  return {
    namespaces: orphans.namespaces,
    agents: orphans.agents.map((a) => `${a.namespace}/${a.id}`),
    sessionRows: orphans.sessionRows,
  };
}
