/** Keeps the session store in step with the workflow. */
import { ApplicationFailure, log } from '@temporalio/activity';
import type { SessionStore } from '../lib/store/session-store';
import type { Session } from '../lib/domain';

export function createRecordActivities(store: SessionStore) {
  return {
    /**
     * `version`: the workflow's (workflow time, count) of this write; a write that arrives after a
     * newer one (a retry, a frozen worker's) changes nothing. Absent in histories from before versions.
     */
    async recordSession(view: Session, version: { generation: number; seq: number } = { generation: 0, seq: 0 }): Promise<void> {
      const existing = await store.get(view.sessionId);
      // A row is its own workflow's: another workflow naming the same session id is refused.
      if (existing && (existing.workflowId !== view.workflowId || existing.user !== view.user)) {
        throw ApplicationFailure.nonRetryable(
          `session ${view.sessionId} is recorded for ${existing.workflowId}: ${view.workflowId} may not record it`,
          'SessionNotOwned',
        );
      }
      // Runs from before 'record-activity' left activity to the orchestrator, which moved it forward only.
      const written = await store.put({
        ...view,
        endReason: view.endReason ?? null, // absent in histories from before end reasons
        createdAtMs: existing?.createdAtMs ?? view.createdAtMs,
        updatedAtMs: Date.now(),
        lastActivityAtMs: Math.max(view.lastActivityAtMs, existing?.lastActivityAtMs ?? 0),
        ...version,
      });
      if (!written)
        log.info(`session ${view.sessionId}: the stored row is as new as ${version.generation}/${version.seq} (${view.phase}) or newer; left as it is`);
    },

    async deleteSessionRow(sessionId: string): Promise<void> {
      await store.delete(sessionId);
    },
  };
}
