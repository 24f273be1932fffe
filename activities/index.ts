/**
 * All activities, built from their dependencies (temporalio/samples-typescript
 * activities-dependency-injection). Workflows import this module's type only.
 */
import { createCleanupActivities, type CleanupDeps } from './cleanup';
import { createPlacementActivities } from './placement';
import { createProvisioningActivities, type ProvisioningDeps } from './provisioning';
import { createRecordActivities } from './records';
import type { SessionTimeouts } from '../workflows/messages';
import type { VolumeTimeouts } from '../lib/domain';
import { createVolumeActivities, type VolumeDeps } from './volumes';

/** `sessionTimeouts`, `volumeTimeouts`: the worker's, which every session and volume it runs keeps to. */
export type ActivityDeps = ProvisioningDeps & CleanupDeps & VolumeDeps & { sessionTimeouts: SessionTimeouts; volumeTimeouts: VolumeTimeouts };

export function createActivities(deps: ActivityDeps) {
  return {
    ...createProvisioningActivities(deps),
    ...createRecordActivities(deps.store),
    ...createPlacementActivities(deps.sessionTimeouts, deps.volumeTimeouts, deps.backend.kind),
    ...createCleanupActivities(deps),
    ...createVolumeActivities(deps),
  };
}
