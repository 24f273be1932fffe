/**
 * Where a session runs and by which timeouts: derived in the worker from (user, workspace) and its
 * own configuration, as a local activity (workflows cannot hash), never from what started it.
 */
import { ApplicationFailure } from '@temporalio/activity';
import type { VolumeTimeouts } from '../lib/domain';
import { placementFor, volumeWorkflowIdFor, workflowIdFor } from '../lib/naming';
import { InvalidInputError, validateUserName, validateWorkspacePath } from '../lib/validate';
import type { SessionTimeouts } from '../workflows/messages';

/** The user and workspace as validated (NFC), and where they run; throws InvalidInputError for either. */
export function validatedPlacement(user: string, workspace: string) {
  const validated = { user: validateUserName(user), workspace: validateWorkspacePath(workspace) };
  return { ...validated, ...placementFor(validated.user, validated.workspace) };
}

/** `backend`: the kind of compute backend this worker runs sessions on, for the Temporal UI. */
export function createPlacementActivities(timeouts: SessionTimeouts, volumeTimeouts: VolumeTimeouts, backend: string) {
  return {
    /**
     * The user and workspace as validated (NFC), the session's namespace, volume, workflow id and
     * timeouts (and the backend), and its volume's owner and timeouts, from what the workflow was started for.
     */
    async deriveSession({ user, workspace }: { user: string; workspace: string }) {
      try {
        const placement = validatedPlacement(user, workspace);
        return {
          ...placement,
          workflowId: workflowIdFor(placement.namespace),
          timeouts,
          backend,
          volumeWorkflowId: volumeWorkflowIdFor(placement.volume),
          volumeTimeouts,
        };
      } catch (err) {
        if (err instanceof InvalidInputError) throw ApplicationFailure.nonRetryable(err.message, 'InvalidInput');
        throw err;
      }
    },
  };
}
