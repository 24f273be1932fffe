/** Keeps the session store in step with the workflow. */
import { ApplicationFailure } from '@temporalio/activity';
import type { SessionStore } from '../lib/store/session-store';
import type { SessionView } from '../workflows/messages';

export function createRecordActivities(store: SessionStore) {
  return {
    async recordSession(view: SessionView): Promise<void> {
      // The orchestrator also moves lastActivityAt (heartbeats); never move it backward.
      const existing = await store.get(view.sessionId);
      // A row is its own workflow's: another workflow naming the same session id is refused.
      if (existing && (existing.workflowId !== view.workflowId || existing.user !== view.user)) {
        throw ApplicationFailure.nonRetryable(
          `session ${view.sessionId} is recorded for ${existing.workflowId}: ${view.workflowId} may not record it`,
          'SessionNotOwned',
        );
      }
      const lastActivityAt = Math.max(view.lastActivityAtMs, existing?.lastActivityAt.getTime() ?? 0);
      const { createdAtMs, lastActivityAtMs: _seen, ...fields } = view;
      await store.put({
        ...fields,
        createdAt: existing?.createdAt ?? new Date(createdAtMs),
        updatedAt: new Date(),
        lastActivityAt: new Date(lastActivityAt),
      });
    },

    async deleteSessionRow(sessionId: string): Promise<void> {
      await store.delete(sessionId);
    },
  };
}
