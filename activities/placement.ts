/** Where a session runs: a pure derivation, run as a local activity because workflows cannot hash. */
import { ApplicationFailure } from '@temporalio/activity';
import { placementFor, workflowIdFor } from '../lib/naming';
import { InvalidInputError, validateUserName, validateWorkspacePath } from '../lib/validate';

export function createPlacementActivities() {
  return {
    /** The session's namespace, volume and workflow id, from what the workflow was started for. */
    async derivePlacement({ user, workspace }: { user: string; workspace: string }) {
      try {
        const placement = placementFor(validateUserName(user), validateWorkspacePath(workspace));
        return { ...placement, workflowId: workflowIdFor(placement.namespace) };
      } catch (err) {
        if (err instanceof InvalidInputError) throw ApplicationFailure.nonRetryable(err.message, 'InvalidInput');
        throw err;
      }
    },
  };
}
