/**
 * A session cancelled (in Temporal) while its claim waits out the removal of its volume, which is
 * then refused: the owner restores the volume, and must not grant it to the session that is gone.
 * Shared by the volume tests and the replay recorder.
 */
import { UnsupportedVolumeError } from '../../lib/filestore/errors';
import { placementFor } from '../../lib/naming';
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
    const asked = client.getServer(workspace, { timeoutMs: 60_000 }).catch((err: Error) => err);
    const waiting = async () => (await store.list({ user })).find((row) => row.workspace === workspace && row.sessionId !== ended.sessionId);
    await waitFor(async () => (await waiting())?.phase === 'PROVISIONING_VOLUME', 15_000, 'the claim to wait');
    await stack.temporal.workflow.getHandle((await waiting())!.workflowId).cancel();
    await waitFor(async () => (await waiting())?.phase === 'ENDED', 15_000, 'the cancelled session to end');
    const answer = await asked;
    refuse();
    // Refused, the volume is kept: pinned in the store.
    await waitFor(async () => (await store.getVolume(volume))?.pinned === true, 15_000, 'the refused removal');
    return { ended: { sessionId: ended.sessionId, volume }, cancelled: (await waiting())!, answer };
  } finally {
    refuse();
    backend.deleteVolume = deleteVolume;
  }
}
