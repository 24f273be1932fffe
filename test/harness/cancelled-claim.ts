/**
 * A session cancelled (in Temporal) while its claim waits out the removal of its volume, which is
 * then refused: the owner restores the volume, and must not grant it to the session that is gone.
 * Shared by the volume tests and the replay recorder.
 */
import { UnsupportedVolumeError } from '../../lib/filestore/errors';
import { placementFor, volumeWorkflowIdFor } from '../../lib/naming';
import type { SessionRecord } from '../../lib/domain';
import type { startStack } from './stack';
import { waitFor } from './wait';

type Stack = Awaited<ReturnType<typeof startStack>>;

export interface CancelledClaim {
  /** The first session, ended: its volume went to removal. */
  ended: { sessionId: string; volume: string };
  /** The session cancelled while its claim waited. */
  cancelled: SessionRecord;
  /** What its GetServer answered. */
  answer: unknown;
  /** The failure types of the owner's updates, in order: how each claim ended. */
  claimFailures: Array<string | null>;
}

/** Returns once the cancelled session ended and the owner, refused the removal, kept the volume. */
export async function cancelClaimDuringRemoval(stack: Stack, user: string, workspace: string): Promise<CancelledClaim> {
  const { backend, store } = stack.worker;
  const deleteVolume = backend.deleteVolume.bind(backend);
  const volume = placementFor(user, workspace).volume;
  let refuse!: () => void;
  const refused = new Promise<void>((resolve) => (refuse = resolve));
  let removing = false;
  backend.deleteVolume = async (name) => {
    if (name !== volume) return deleteVolume(name);
    removing = true;
    await refused;
    throw new UnsupportedVolumeError(`cannot back up ${name}: refused by the test`);
  };
  try {
    const client = await stack.client(user);
    const ended = await client.getServer(workspace);
    await client.endSession(ended.sessionId);
    await waitFor(() => removing, 15_000, 'the removal to start');
    const owner = stack.temporal.workflow.getHandle(volumeWorkflowIdFor(volume));
    const history = async () => (await owner.fetchHistory()).events!;
    const accepted = async () => (await history()).filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes).length;
    const claimsBefore = await accepted();
    const asked = client.getServer(workspace, { timeoutMs: 60_000 }).catch((err: Error) => err);
    const waiting = async () => (await store.list({ user })).find((row) => row.workspace === workspace && row.sessionId !== ended.sessionId);
    // Cancelled only once the owner has the claim: before, there would be no claim to withdraw.
    await waitFor(async () => (await accepted()) > claimsBefore, 15_000, 'the claim to reach the owner');
    await stack.temporal.workflow.getHandle((await waiting())!.workflowId).cancel();
    await waitFor(async () => (await waiting())?.phase === 'ENDED', 15_000, 'the cancelled session to end');
    const answer = await asked;
    refuse();
    // Refused, the volume is kept: pinned in the store.
    await waitFor(async () => (await store.getVolume(volume))?.pinned === true, 15_000, 'the refused removal');
    const claimFailures = (await history()).flatMap((e) => {
      const outcome = e.workflowExecutionUpdateCompletedEventAttributes?.outcome;
      return outcome ? [outcome.failure?.applicationFailureInfo?.type ?? null] : [];
    });
    return { ended: { sessionId: ended.sessionId, volume }, cancelled: (await waiting())!, answer, claimFailures };
  } finally {
    refuse();
    backend.deleteVolume = deleteVolume;
  }
}
