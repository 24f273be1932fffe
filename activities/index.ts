/**
 * All activities, built from their dependencies (temporalio/samples-typescript
 * activities-dependency-injection). Workflows import this module's type only.
 */
import { createCleanupActivities, type CleanupDeps } from './cleanup';
import { createPlacementActivities } from './placement';
import { createProvisioningActivities, type ProvisioningDeps } from './provisioning';
import { createRecordActivities } from './records';

export type ActivityDeps = ProvisioningDeps & CleanupDeps;

export function createActivities(deps: ActivityDeps) {
  return {
    ...createProvisioningActivities(deps),
    ...createRecordActivities(deps.store),
    ...createPlacementActivities(),
    ...createCleanupActivities(deps),
  };
}
