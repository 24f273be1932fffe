/**
 * The one durable owner of a (user, workspace) volume, under volumeWorkflowIdFor(volume). It keeps
 * the volume while a session holds it or an operator pinned it, trashes it once nobody used it for
 * the retention period, and removes it (backed up first where configured) at the end of the
 * soft-delete window unless someone wants it back first. A session claims the volume before it
 * binds it, so removal and a new session exclude each other: a claim waits out a removal, and
 * a removal starts only with no claim pending and no session workflow running.
 *
 * Messages are hints: whoever reaches Temporal can send them. Before it trashes or removes, the
 * owner asks Temporal itself whether the volume's session workflow runs.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { RetryPolicy } from '@temporalio/common';
import type { createActivities } from '../activities';
import type { VolumeTimeouts } from '../lib/domain';
import { summarized } from './details';
import { FAILURE } from './messages';
import { volumeCurrentDetails } from './volume-details';
import { claimVolumeUpdate, pinVolumeUpdate, releaseVolumeSignal, VOLUME_FAILURE, volumeQuery, type VolumeInput, type VolumeView } from './volume-messages';

type Activities = ReturnType<typeof createActivities>;

const RETRY: RetryPolicy = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' };

const records = proxyLocalActivities<Activities>({ startToCloseTimeout: '10s', retry: RETRY });
const checks = summarized(proxyActivities<Activities>({ startToCloseTimeout: '30s', retry: RETRY }));
/** Steps that can take long (a backup before the deletion, walking a large tree): they heartbeat. */
const lengthy = summarized(proxyActivities<Activities>({ startToCloseTimeout: '2h', heartbeatTimeout: '1m', retry: RETRY }));

/** A claim waiting when the owner looks at its PRESENT volume is granted before anything else. */
const CLAIMS_FIRST_PATCH = 'claims-first';

/** A claim of a session that already released the volume (it ended waiting) is refused, not granted. */
const WITHDRAWN_CLAIMS_PATCH = 'withdrawn-claims';
/** How many released sessions are remembered: one volume's sessions come one after another. */
const RELEASED_KEPT = 16;

/** Continue as new past this many events: each session adds a handful. */
const MAX_HISTORY_EVENTS = 1000;

export async function volumeWorkflow(input: VolumeInput): Promise<VolumeView> {
  const carried = workflowInfo().continuedFromExecutionRunId ? input.carried : undefined;
  const view: VolumeView = {
    volume: '',
    namespace: '',
    user: input.user,
    workspace: input.workspace,
    state: carried?.state ?? 'PRESENT',
    pinned: carried?.pinned ?? false,
    holder: carried?.holder ?? null,
    lastUsedAtMs: carried?.lastUsedAtMs ?? Date.now(),
    removeAtMs: carried?.removeAtMs ?? null,
    sizeBytes: carried?.sizeBytes ?? null,
  };
  /** Measured once a session released the volume: its size changes only while one holds it. */
  let measured = carried?.measured ?? false;
  // Orders this owner's store writes after every earlier owner's (lib/domain VolumeRecord).
  const generation = carried?.generation ?? Date.now();
  let seq = carried?.seq ?? 0;
  /** Bumped by every message: the loop below re-decides on each. */
  let events = 0;
  /** Claims waiting for the volume: a trashed volume with one is restored. */
  let claims = 0;
  /**
   * Sessions that released the volume, newest last. A session releases once, as it ends, whether or
   * not its claim was granted: a claim of one of them that is granted later would hold the volume
   * for a session that is gone.
   */
  const released = carried?.released ?? [];
  /** Why the volume could not be removed: it is then kept, until an operator pins or unpins it. */
  let notRemovable = carried?.notRemovable;
  /** Set once derived: handlers must be set before the first await, and messages wait for it. */
  let derived = false;

  const removedFailure = () =>
    ApplicationFailure.create({ type: VOLUME_FAILURE.VOLUME_REMOVED, message: `volume ${view.volume} was removed`, nonRetryable: true });
  const withdrawnFailure = (sessionId: string) =>
    ApplicationFailure.create({
      type: VOLUME_FAILURE.CLAIM_WITHDRAWN,
      message: `the claim of volume ${view.volume} by session ${sessionId} was withdrawn: the session released the volume before it was granted`,
      nonRetryable: true,
    });

  setHandler(volumeQuery, () => ({ ...view }));
  setHandler(claimVolumeUpdate, async (sessionId) => {
    claims++;
    events++;
    try {
      await condition(() => derived && (view.state === 'PRESENT' || view.state === 'REMOVED'));
    } finally {
      claims--;
    }
    if (view.state === 'REMOVED') throw removedFailure();
    if (released.includes(sessionId) && patched(WITHDRAWN_CLAIMS_PATCH)) throw withdrawnFailure(sessionId);
    view.holder = sessionId;
    view.lastUsedAtMs = Date.now();
    events++;
    return { ...view };
  });
  setHandler(releaseVolumeSignal, (sessionId) => {
    if (!released.includes(sessionId)) released.push(sessionId);
    if (released.length > RELEASED_KEPT) released.shift();
    // A release by an older session after a newer one claimed would free the newer one's volume.
    if (view.holder !== null && view.holder !== sessionId) return;
    view.holder = null;
    view.lastUsedAtMs = Date.now();
    measured = false;
    events++;
  });
  // The pin is the store's, which only the orchestrator writes for an operator: the message only says to read it.
  setHandler(pinVolumeUpdate, async () => {
    await condition(() => derived);
    const pinned = (await records.volumePin(view.volume)) !== null;
    // An operator's decision either way lets a refused removal be tried again; a message alone does not.
    if (pinned !== view.pinned) notRemovable = undefined;
    view.pinned = pinned;
    events++;
    if (view.pinned) await condition(() => view.state === 'PRESENT' || view.state === 'REMOVED');
    if (view.pinned && view.state === 'REMOVED') throw removedFailure();
    return { ...view };
  });

  const record = async () => {
    setCurrentDetails(volumeCurrentDetails(view, notRemovable));
    // In the store, pinned means kept whatever its last use, for an operator's pin or a refused removal.
    await records.recordVolume({ ...view, pinned: view.pinned || notRemovable !== undefined, generation, seq: ++seq });
  };

  const placement = await records.deriveSession({ user: input.user, workspace: input.workspace });
  if (placement.volumeWorkflowId !== workflowInfo().workflowId) {
    throw ApplicationFailure.nonRetryable(
      `workflow id ${workflowInfo().workflowId} is not the volume owner's id of this user and workspace (${placement.volumeWorkflowId})`,
      FAILURE.PLACEMENT_MISMATCH,
    );
  }
  // The names as validated (NFC), as every session row has them.
  Object.assign(view, { volume: placement.volume, namespace: placement.namespace, user: placement.user, workspace: placement.workspace });
  const timeouts: VolumeTimeouts = placement.volumeTimeouts;
  if (!carried) {
    // An owner that was stopped (terminated) left its state in the store: go on from there, and
    // finish a removal it began before anyone gets the volume.
    const left = await records.storedVolume(view.volume);
    if (input.resume && (!left || left.state === 'REMOVED')) {
      view.state = 'REMOVED';
      derived = true;
      await condition(allHandlersFinished);
      return { ...view };
    }
    if (left && left.state !== 'REMOVED') {
      Object.assign(view, { state: left.state, lastUsedAtMs: left.lastUsedAtMs, removeAtMs: left.removeAtMs, sizeBytes: left.sizeBytes });
    }
    // A pin left over from a volume removed since belongs to none.
    const pin = await records.volumePin(view.volume);
    view.pinned = pin !== null && !(left?.state === 'REMOVED' && pin.pinnedAtMs < left.updatedAtMs);
  }
  // Recorded before any claim is granted: the store knows a volume before it is bound.
  await record();
  derived = true;

  /** Waits until a message came since `seen` or `deadlineMs` passes (null: no deadline); true if one came. */
  const messageSince = async (seen: number, deadlineMs: number | null) => {
    if (deadlineMs === null) {
      await condition(() => events !== seen);
      return true;
    }
    return events !== seen || (await condition(() => events !== seen, Math.max(1, deadlineMs - Date.now())));
  };

  /** Whether the session workflow runs; if not, the last use is when it closed, if later than known. */
  const sessionRuns = async () => {
    const use = await checks.sessionUse(placement.workflowId);
    if (!use.running && use.closedAtMs !== null) view.lastUsedAtMs = Math.max(view.lastUsedAtMs, use.closedAtMs);
    return use.running;
  };

  /** Kept whatever its last use: pinned (as the store says now), or found not removable. */
  const exempt = async () => {
    view.pinned = (await records.volumePin(view.volume)) !== null;
    return view.pinned || notRemovable !== undefined;
  };

  const restore = () => {
    view.state = 'PRESENT';
    view.lastUsedAtMs = Date.now();
  };

  /**
   * PRESENT: kept while pinned or held; trashed once unused for the retention period. A holder whose
   * workflow was terminated never releases: a held volume is checked once a retention period.
   */
  async function keep(): Promise<void> {
    // A claim waiting here is granted at once (the one that started this owner, say): let it in first,
    // so that a volume about to be held is neither measured nor recorded as unheld in between.
    if (claims > 0 && patched(CLAIMS_FIRST_PATCH)) await condition(() => claims === 0);
    const seen = events;
    const held = view.holder !== null;
    if (!held && !measured) {
      view.sizeBytes = await lengthy.measureVolume({ volume: view.volume });
      measured = true;
    }
    const kept = view.pinned || notRemovable !== undefined;
    view.removeAtMs = held || kept ? null : view.lastUsedAtMs + timeouts.retentionMs;
    await record();
    if (await messageSince(seen, kept ? null : (view.removeAtMs ?? Date.now() + timeouts.retentionMs))) return;
    const running = await sessionRuns();
    // A message while Temporal was asked (a claim granted, a pin) changes what is decided: decide again.
    if (events !== seen) return;
    if (running) {
      view.lastUsedAtMs = Date.now();
      return;
    }
    view.holder = null;
    if (Date.now() < view.lastUsedAtMs + timeouts.retentionMs || (await exempt()) || events !== seen) return;
    view.state = 'TRASHED';
    view.removeAtMs = Date.now() + timeouts.softDeleteWindowMs;
  }

  /** TRASHED: back to PRESENT if claimed or pinned; removed at the end of the window. */
  async function trash(): Promise<void> {
    const seen = events;
    await record();
    const wanted = () => claims > 0 || view.pinned;
    if (!wanted() && (await messageSince(seen, view.removeAtMs)) && !wanted()) return;
    if (wanted()) return restore();
    // From here on a claim waits. A session that runs (one from before volumes had owners, which
    // does not claim, or one that will claim) or a pin keeps the volume; else its removal is decided.
    view.state = 'REMOVING';
    view.removeAtMs = null;
    if ((await sessionRuns()) || (await exempt()) || wanted()) return restore();
    await record();
  }

  /** REMOVING: recorded only once decided, so an owner restarted here finishes it. */
  async function remove(): Promise<void> {
    try {
      await lengthy.deleteVolume({ volume: view.volume });
    } catch (err) {
      if (!(err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === FAILURE.VOLUME_NOT_REMOVABLE)) throw err;
      // Kept, loudly: an operator copies the data elsewhere and removes the volume, or pins it.
      notRemovable = err.cause.message;
      return restore();
    }
    view.state = 'REMOVED';
    view.holder = null;
    await record();
  }

  // The steps change the state: read it through a function, which the compiler does not narrow.
  const state = () => view.state;
  while (state() !== 'REMOVED') {
    if (state() === 'PRESENT') await keep();
    else if (state() === 'TRASHED') await trash();
    else await remove();
    const info = workflowInfo();
    const historyFull = info.historyLength >= MAX_HISTORY_EVENTS || info.continueAsNewSuggested;
    // Only with no message in flight: a handler waiting for the loop would wait for ever.
    if ((state() === 'PRESENT' || state() === 'TRASHED') && historyFull && claims === 0 && allHandlersFinished()) {
      const resting = view.state as 'PRESENT' | 'TRASHED';
      await continueAsNew<typeof volumeWorkflow>({ ...input, carried: { ...view, state: resting, generation, seq, measured, notRemovable, released } });
    }
  }
  await condition(allHandlersFinished);
  return { ...view };
}
