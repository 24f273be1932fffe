/**
 * Run by a Temporal Schedule: finds what the backend and the store hold for sessions that no
 * longer have a live workflow, and removes it. Each removal is its own activity, so the history
 * shows exactly what was reconciled. Filestore instances no session accounts for are only
 * reported: deleting a share cannot be undone, so an operator decides.
 */
import { patched, proxyActivities, setCurrentDetails } from '@temporalio/workflow';
import type { createActivities } from '../activities';
import type { OrphanedShares } from '../activities/cleanup';
import { cleanupDetails, summarized } from './details';

type Activities = ReturnType<typeof createActivities>;

const { findOrphans, deleteNamespace, killAgent, deleteSessionRow, findOrphanedShares } = summarized(
  proxyActivities<Activities>({
    startToCloseTimeout: '1m',
    retry: { initialInterval: '1s', maximumAttempts: 5 },
  }),
);

/** Runs recorded before the share report replay without it. */
const SHARE_REPORT_PATCH = 'report-orphaned-shares';

export interface CleanupReport {
  namespaces: string[];
  agents: string[];
  sessionRows: string[];
  shares: OrphanedShares;
}

export async function cleanupWorkflow(): Promise<CleanupReport> {
  const orphans = await findOrphans();
  const found = { ...orphans, agents: orphans.agents.map((a) => `${a.namespace}/${a.id}`) };
  setCurrentDetails(cleanupDetails(found, false));
  await Promise.all(orphans.agents.map((agent) => killAgent(agent)));
  await Promise.all(orphans.namespaces.map((namespace) => deleteNamespace({ namespace })));
  await Promise.all(orphans.sessionRows.map((sessionId) => deleteSessionRow(sessionId)));
  const shares = patched(SHARE_REPORT_PATCH) ? await findOrphanedShares() : { orphans: [], unattributed: [] };
  setCurrentDetails(cleanupDetails(found, true, shares));
  return { namespaces: found.namespaces, agents: found.agents, sessionRows: found.sessionRows, shares };
}
