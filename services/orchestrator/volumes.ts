/**
 * Workspace volumes as users and operators see them: listed from the store (their owners'
 * projection). An operator's pin is written to the store, which the owner workflow reads before it
 * trashes or removes a volume: a message from someone who reaches only Temporal cannot unpin one.
 */
import * as grpc from '@grpc/grpc-js';
import { WithStartWorkflowOperation, type Client } from '@temporalio/client';
import type { VolumeRecord } from '../../lib/domain';
import { isDns1123Label, volumeWorkflowIdFor } from '../../lib/naming';
import type { SessionStore } from '../../lib/store/session-store';
import type { volumeWorkflow } from '../../workflows';
import { pinVolumeUpdate, VOLUME_FAILURE, type VolumeView } from '../../workflows/volume-messages';
import { volumeSummary } from '../../workflows/volume-details';
import { RpcError, updateFailure } from './errors';
import type { Caller } from './sessions';
import type { Logger } from '../../lib/log';

export class Volumes {
  constructor(private readonly options: { temporal: Client; store: SessionStore; taskQueue: string; log: Logger }) {}

  async list(caller: Caller, allUsers: boolean): Promise<VolumeRecord[]> {
    if (allUsers && !caller.operator) {
      throw new RpcError(grpc.status.PERMISSION_DENIED, `user '${caller.user}' is not an operator: cannot list all volumes`);
    }
    return this.options.store.listVolumes(allUsers ? {} : { user: caller.user });
  }

  /** Operators only. Resolves once the volume is kept (restored first if it was trashed). */
  async pin(caller: Caller, volume: string, pinned: boolean): Promise<VolumeView> {
    const action = pinned ? 'pin' : 'unpin';
    if (!caller.operator) throw new RpcError(grpc.status.PERMISSION_DENIED, `user '${caller.user}' is not an operator: cannot ${action} volumes`);
    if (!isDns1123Label(volume)) throw new RpcError(grpc.status.INVALID_ARGUMENT, `${JSON.stringify(volume)} is not a volume name`);
    const known = await this.options.store.getVolume(volume);
    if (!known) throw new RpcError(grpc.status.NOT_FOUND, `volume ${volume} is not known (see 'rbs volumes --all')`);
    if (known.state === 'REMOVED')
      throw new RpcError(grpc.status.FAILED_PRECONDITION, `volume ${volume} was removed at ${new Date(known.updatedAtMs).toISOString()}`);
    const { user, workspace } = known;
    // The store's pin is what the owner obeys; the message only tells it to read it.
    if (pinned) await this.options.store.pinVolume({ volume, pinnedBy: caller.user, pinnedAt: new Date() });
    else await this.options.store.unpinVolume(volume);
    // The owner of a volume its store row names: started anew only if it stopped (an operator terminated it).
    const start = new WithStartWorkflowOperation<typeof volumeWorkflow>('volumeWorkflow', {
      workflowId: volumeWorkflowIdFor(volume),
      taskQueue: this.options.taskQueue,
      args: [{ user, workspace, resume: true }],
      workflowIdConflictPolicy: 'USE_EXISTING',
      staticSummary: volumeSummary(user, workspace),
    });
    try {
      const view = await this.options.temporal.workflow.executeUpdateWithStart(pinVolumeUpdate, { args: [], startWorkflowOperation: start });
      this.options.log.info({ audit: 'operator', action, operator: caller.user, targetUser: user, volume }, `volume ${action}ned`);
      return view;
    } catch (err) {
      if (updateFailure(err)?.type === VOLUME_FAILURE.VOLUME_REMOVED) {
        // A pin must not outlive its volume and keep the next one of the workspace.
        await this.options.store.unpinVolume(volume);
        throw new RpcError(grpc.status.FAILED_PRECONDITION, `volume ${volume} was removed before it could be ${action}ned`);
      }
      throw err;
    }
  }
}
