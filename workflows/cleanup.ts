/**
 * Run by a Temporal Schedule: finds what the backend and the store hold for sessions that no
 * longer have a live workflow, and removes it; gives volumes from before volume owners an owner;
 * expires the store rows of long-ended sessions and removed volumes. Each removal is its own activity, so the history
 * shows exactly what was reconciled. Filestore instances no session accounts for are only
 * reported: deleting a share cannot be undone, so an operator decides.
 */
import { patched, proxyActivities, setCurrentDetails } from '@temporalio/workflow';
import type { createActivities } from '../activities';
import type { OrphanedShares } from '../activities/cleanup';
import { cleanupDetails, summarized } from './details';
import { metrics } from './metrics';

type Activities = ReturnType<typeof createActivities>;

const {
  findOrphans,
  deleteNamespace,
  killAgent,
  deleteSessionRow,
  findOrphanedShares,
  findUnownedVolumes,
  adoptVolume,
  restartVolumeOwner,
  findExpiredRows,
  deleteVolumeRecord,
} = summarized(
  proxyActivities<Activities>({
    startToCloseTimeout: '1m',
    retry: { initialInterval: '1s', maximumAttempts: 5 },
  }),
);

/** Runs recorded before the share report replay without it. */
const SHARE_REPORT_PATCH = 'report-orphaned-shares';
/** Runs recorded before volumes had owners replay without adopting volumes and expiring rows. */
const VOLUME_OWNER_PATCH = 'adopt-volumes-expire-rows';

export interface CleanupReport {
  /** Leftovers removed (or found gone). */
  namespaces: string[];
  agents: string[];
  /** Leftovers found but kept, since they had become a new session's by then (a pass recorded before this: none). */
  spared?: { namespaces: string[]; agents: string[] };
  sessionRows: string[];
  shares: OrphanedShares;
  /** Volumes from before volume owners that were given one (workflows/volume.ts). */
  adoptedVolumes?: string[];
  /** Volumes whose owner had stopped (terminated), started again. */
  restartedOwners?: string[];
  /** Rows of ended sessions and removed volumes past RBS_ENDED_ROW_RETENTION_MS. */
  expiredRows?: { sessionRows: string[]; volumeRows: string[] };
}

export async function cleanupWorkflow(): Promise<CleanupReport> {
  const orphans = await findOrphans();
  const found = { ...orphans, agents: orphans.agents.map((a) => `${a.namespace}/${a.id}`) };
  setCurrentDetails(cleanupDetails(found, false));
  const agentRemovals = await Promise.all(orphans.agents.map((agent) => killAgent(agent)));
  // Each only while still its session's: a new session of the same workspace may have made it again since.
  const namespaceRemovals = await Promise.all(
    orphans.namespaces.map((namespace) => deleteNamespace({ namespace, orphanOf: orphans.namespaceSessions?.[namespace] })),
  );
  // A pass recorded before removals said what they did has undefined for each: removed, as it reported then.
  const kept = <T>(items: T[], removals: Array<string | undefined>, spared: boolean) => items.filter((_, i) => (removals[i] === 'spared') === spared);
  const removed = { namespaces: kept(found.namespaces, namespaceRemovals, false), agents: kept(found.agents, agentRemovals, false) };
  const spared = { namespaces: kept(found.namespaces, namespaceRemovals, true), agents: kept(found.agents, agentRemovals, true) };
  // A volume made before owners gets one before the session rows that tell of it can go.
  const owners = patched(VOLUME_OWNER_PATCH);
  const unowned = owners ? await findUnownedVolumes() : { adopt: [], restart: [], notAdopted: [] };
  const adopted: string[] = [];
  const notAdopted = new Set(unowned.notAdopted);
  // One at a time: the first pass after an upgrade may find many, and each owner measures its volume.
  for (const claim of unowned.adopt) {
    try {
      await adoptVolume(claim);
      adopted.push(claim.volume);
    } catch {
      // Its rows stay, and so does the volume; the activity's failure says why, and the next pass tries again.
      notAdopted.add(claim.volume);
    }
  }
  await Promise.all(unowned.restart.map((claim) => restartVolumeOwner(claim)));
  // An orphaned row may be what tells of a volume that got no owner: it stays until the volume has one.
  const rowsToDelete = orphans.sessionRows.filter((id) => !notAdopted.has(orphans.sessionRowVolumes?.[id] ?? ''));
  await Promise.all(rowsToDelete.map((sessionId) => deleteSessionRow(sessionId)));
  const expired = owners ? await findExpiredRows() : { sessionRows: [], volumeRows: [] };
  await Promise.all(expired.sessionRows.map((sessionId) => deleteSessionRow(sessionId)));
  await Promise.all(expired.volumeRows.map((volume) => deleteVolumeRecord(volume)));
  const shares = patched(SHARE_REPORT_PATCH) ? await findOrphanedShares() : { orphans: [], unattributed: [] };
  const restarted = unowned.restart.map((claim) => claim.volume);
  const volumes = owners ? { adopted, restarted, expiredRows: [...expired.sessionRows, ...expired.volumeRows] } : undefined;
  setCurrentDetails(cleanupDetails({ ...removed, sessionRows: rowsToDelete }, true, shares, volumes, spared));
  metrics.cleanupPass({
    namespaces: removed.namespaces.length,
    agents: removed.agents.length,
    sessionRows: rowsToDelete.length,
    adoptedVolumes: adopted.length,
    restartedOwners: restarted.length,
    expiredRows: expired.sessionRows.length + expired.volumeRows.length,
    orphanedShares: shares.orphans.length + shares.unattributed.length,
  });
  const report = { ...removed, spared, sessionRows: rowsToDelete, shares };
  return owners ? { ...report, adoptedVolumes: adopted, restartedOwners: restarted, expiredRows: expired } : report;
}
