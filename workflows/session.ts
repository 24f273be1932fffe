/**
 * One build session, from provisioning to its end. Deterministic: all I/O happens in activities;
 * time comes from workflow timers. The lifecycle is a few named steps: provision (a saga),
 * serve (READY ⇄ SUSPENDED), end (teardown, which runs even when the workflow is cancelled).
 */
import {
  ApplicationFailure,
  CancellationScope,
  allHandlersFinished,
  condition,
  continueAsNew,
  isCancellation,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  setCurrentDetails,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { createActivities } from '../activities';
import {
  activityDebounceMs,
  type EndReason,
  EXPIRY_REASON,
  isProvisioning,
  isTerminal,
  type Session,
  type SessionPhase,
  type SessionPlacement,
} from '../lib/domain';
import { QUICK, QUICK_LOCAL, RETRY } from './step-options';
import { FAILURE, endUpdate, sessionFailedMessage, getServerUpdate, heartbeatSignal, sessionQuery, type SessionInput, type SessionTimeouts } from './messages';
import { failureCode, SESSION_END_REASON, SESSION_FAILURE, SESSION_ID, SESSION_PHASE } from '../lib/temporal/search-attributes';
import { type SessionMoment, sessionCurrentDetails, summarized } from './details';
import { metrics, type ReadyStart } from './metrics';

type Activities = ReturnType<typeof createActivities>;

/** Sessions claim their volume from its owner (workflows/volume.ts), which alone removes it. */
const VOLUME_OWNER_PATCH = 'volume-owner';
/** No sync step where the proxy's first rsync fills the volume (Kubernetes): the step only checked a binding. */
const PROXY_SYNC_PATCH = 'proxy-initial-sync';
/** The workflow alone writes its row's lastActivityAtMs (before, the orchestrator also did on heartbeats). */
const ACTIVITY_RECORD_PATCH = 'record-activity';
/** A session that ends while its claim waits releases too, which withdraws the claim (workflows/volume.ts). */
const RELEASE_CLAIM_PATCH = 'release-waiting-claim';

const steps = summarized(proxyActivities<Activities>(QUICK));
/**
 * The quickest steps (namespace, volume binding, credentials), run in the worker that runs the
 * workflow task: no task dispatch, nor a workflow task of their own. A session to READY cost the
 * worker and Temporal more CPU than the control plane (bench/kubernetes.ts). Starting the agent
 * stays an activity: it may take seconds (a quota's winner is looked for), and while local
 * activities run, the workflow's queries, updates and search attributes wait.
 */
const LOCAL_STEPS_PATCH = 'local-steps';
const localSteps = summarized(proxyLocalActivities<Activities>(QUICK_LOCAL));

/** Steps that wait on something outside (an agent starting, an rsync): they heartbeat. */
const waits = summarized(
  proxyActivities<Activities>({
    startToCloseTimeout: '10m',
    heartbeatTimeout: '10s',
    scheduleToCloseTimeout: '15m',
    retry: RETRY,
  }),
);

/** Claiming the volume waits out a removal under way, which may back the volume up first: it heartbeats meanwhile. */
const volumeClaims = summarized(
  proxyActivities<Activities>({ startToCloseTimeout: '3h', heartbeatTimeout: '10s', scheduleToCloseTimeout: '4h', retry: RETRY }),
);

/** Store writes of phase changes: quick, and run in the worker without a task dispatch of their own. */
const records = proxyLocalActivities<Activities>({ startToCloseTimeout: '10s', retry: RETRY });

/** Store writes of activity: given up on soon (the next activity writes again), as they hold up their workflow task. */
const activityRecords = proxyLocalActivities<Activities>({ scheduleToCloseTimeout: '5s', retry: { ...RETRY, maximumAttempts: 2 } });

/** Teardown must finish: retried until it does. */
const teardown = summarized(proxyActivities<Activities>({ startToCloseTimeout: '1m', retry: RETRY }));

/** Deleting a volume for good may first back it up, which can take long: it heartbeats meanwhile. */
const volumeRemoval = summarized(proxyActivities<Activities>({ startToCloseTimeout: '2h', heartbeatTimeout: '1m', retry: RETRY }));

class EndRequested extends Error {}

export async function sessionWorkflow(input: SessionInput): Promise<Session> {
  const { user, workspace } = input;
  // What a previous run hands on counts only in a run that continues one: a session id, phase and
  // agent in the input of a workflow started by hand would let its starter pose as another session.
  const carried = workflowInfo().continuedFromExecutionRunId ? input.carried : undefined;
  /** The worker's, once derived below; a run from before 'derive-placement' keeps its input's. */
  let timeouts = input.timeouts!;
  const session: Session = {
    sessionId: carried?.sessionId ?? uuid4(),
    workflowId: workflowInfo().workflowId,
    runId: workflowInfo().runId,
    user,
    workspace,
    // Known once derived, below: handlers must be set before the first await, or Temporal
    // rejects the update that started the workflow.
    namespace: input.namespace ?? '',
    volume: input.volume ?? '',
    phase: carried?.phase ?? 'PROVISIONING_NAMESPACE',
    agentAddress: carried?.agentAddress ?? null,
    failureReason: null,
    endReason: null,
    createdAtMs: carried?.createdAtMs ?? Date.now(),
    lastActivityAtMs: carried?.lastActivityAtMs ?? Date.now(),
  };
  /** Bumped by every sign of use; the idle timer and "wanted back" are judged against it. */
  let activitySeq = 0;
  /** The activity count when the session was last suspended: any use since means resume. */
  let suspendedAtSeq = 0;
  /** The phase being recorded right now: set at once, so nobody is handed a READY we are leaving. */
  let pending: SessionPhase | null = null;
  let endRequested = false;
  /** When the agent's certificate is due for renewal (0: not known in this run yet). */
  let credentialsRenewAt = 0;
  /** A client could not reach the agent: serve() probes it at once, and clears this once it is settled. */
  let agentReported = false;
  /** The session claimed its volume (or, before volume owners, bound it): it releases it as it ends. */
  let holdsVolume = carried !== undefined;
  /** The session asked for its volume: granted or not, it releases it as it ends. */
  let claimedVolume = holdsVolume;
  /** The store writes so far: the second part of each row's version, after the workflow time. */
  let recordSeq = carried?.seq ?? 0;
  /** Why a FAILED session failed, as a short code (failureCode): its RbsFailureReason. */
  let failedWith: string | null = null;

  /** What the Temporal UI shows as the session's current details (details.ts). */
  const moment: Omit<SessionMoment, 'session'> = {};
  const show = (change: Partial<typeof moment> = {}) => {
    Object.assign(moment, change);
    setCurrentDetails(sessionCurrentDetails({ session, ...moment }));
  };

  /** When the store last heard of activity from this workflow; whether a write of it is under way; whether this run has written. */
  let activityRecordedAtMs = session.lastActivityAtMs;
  let activityRecording = false;
  let recordedThisRun = false;
  /** `recording`: a phase record that carries the activity follows at once; no write of its own. */
  const touch = (recording = false) => {
    activitySeq++;
    session.lastActivityAtMs = Date.now();
    // A heartbeat may come before the timeouts are derived (a run started without them has none yet).
    const idle = (timeouts as SessionTimeouts | undefined)?.idleTimeoutMs;
    show({ idleDeadlineMs: idle === undefined ? undefined : session.lastActivityAtMs + idle });
    if (recording) activityRecordedAtMs = session.lastActivityAtMs;
    // Half the orchestrator's window: fresh enough for its next look, and few writes however many replicas signal.
    else if (idle !== undefined && session.lastActivityAtMs - activityRecordedAtMs >= activityDebounceMs({ idleTimeoutMs: idle }) / 2) recordActivity();
  };

  /**
   * Tells the store of the activity, without waiting: the row as it is, with the phase being entered
   * if one is (its record is older, so this one must not undo it). Only once this run has written the
   * row, not once the session is over, one write at a time; a write that fails is left to the next activity.
   */
  const recordActivity = () => {
    if (!recordedThisRun || activityRecording || isTerminal(pending ?? session.phase) || !patched(ACTIVITY_RECORD_PATCH)) return;
    activityRecordedAtMs = session.lastActivityAtMs;
    activityRecording = true;
    const version = { generation: Date.now(), seq: ++recordSeq };
    void activityRecords
      .recordSession({ ...session, phase: pending ?? session.phase }, version)
      .catch(() => undefined)
      .finally(() => (activityRecording = false));
  };

  setHandler(sessionQuery, () => ({ ...session }));
  // A heartbeat means someone is using the session: one that is (being) suspended comes back.
  setHandler(heartbeatSignal, (sessionId) => {
    if (sessionId === session.sessionId) touch();
  });
  setHandler(
    getServerUpdate,
    async (_user: string, unreachableAgent?: string) => {
      touch();
      const ending = () => session.phase === 'ENDING' || pending === 'ENDING' || isTerminal(session.phase);
      // Only a hint: the agent it names is probed, and replaced only if it does not answer.
      if (unreachableAgent && unreachableAgent === session.agentAddress && session.phase === 'READY') {
        agentReported = true;
        await condition(() => !agentReported || ending());
      }
      await condition(() => (session.phase === 'READY' && pending === null) || ending());
      if (!ending()) return { ...session };
      if (session.phase === 'FAILED') {
        throw ApplicationFailure.create({
          type: FAILURE.SESSION_FAILED,
          message: sessionFailedMessage(session),
          nonRetryable: true,
        });
      }
      throw ApplicationFailure.create({
        type: FAILURE.SESSION_ENDING,
        message: `session ${session.sessionId} is ending`,
        nonRetryable: true,
      });
    },
    {
      // Validators do not run on replay, so histories from before the argument still replay.
      validator: (caller: string, _unreachableAgent?: string) => {
        if (caller !== session.user) {
          throw ApplicationFailure.create({
            type: FAILURE.SESSION_NOT_FOUND,
            message: `${session.workflowId} is not a session of the caller`,
            nonRetryable: true,
          });
        }
      },
    },
  );
  setHandler(endUpdate, async (sessionId) => {
    if (sessionId !== session.sessionId) {
      throw ApplicationFailure.create({
        type: FAILURE.SESSION_NOT_FOUND,
        message: `session ${sessionId} is not the one in ${session.workflowId}`,
        nonRetryable: true,
      });
    }
    endRequested = true;
    await condition(() => isTerminal(session.phase));
    return { ...session };
  });

  /** For the metrics: when the current phase began, and when and how the way to READY did (the run's start at first). */
  let phaseSince = Date.now();
  const towardReady: { since: number; start: ReadyStart } = { since: workflowInfo().runStartTime.getTime(), start: 'new' };
  const measure = (left: SessionPhase, entered: SessionPhase, at: number) => {
    if (left === entered) return;
    metrics.phaseLeft(left, entered, (at - phaseSince) / 1000, at);
    phaseSince = at;
    if (entered === 'RESUMING' && towardReady.start !== 'replace') Object.assign(towardReady, { since: at, start: 'resume' });
    if (entered === 'READY' && (left === 'RESUMING' || isProvisioning(left))) metrics.ready((at - towardReady.since) / 1000, towardReady.start);
  };

  /** Records the phase first, so whoever sees the new phase finds the store already agreeing. */
  async function enter(phase: SessionPhase): Promise<void> {
    const [left, leftAt] = [session.phase, Date.now()];
    pending = phase;
    const version = { generation: Date.now(), seq: ++recordSeq };
    await CancellationScope.nonCancellable(() => records.recordSession({ ...session, phase }, version));
    recordedThisRun = true;
    session.phase = phase;
    pending = null;
    show();
    measure(left, phase, leftAt);
    const over = isTerminal(phase) && patched('end-reason-search-attributes');
    upsertSearchAttributes([
      { key: SESSION_PHASE, value: phase },
      { key: SESSION_ID, value: session.sessionId },
      ...(over && session.endReason ? [{ key: SESSION_END_REASON, value: session.endReason }] : []),
      ...(over && failedWith ? [{ key: SESSION_FAILURE, value: failedWith }] : []),
    ]);
  }

  /** The saga: each step registers how to undo it; a step that fails for good undoes them all. */
  async function provision(): Promise<void> {
    const undo: Array<() => Promise<unknown>> = [];
    const step = async (phase: SessionPhase, run: () => Promise<void>, compensate?: () => Promise<unknown>) => {
      if (endRequested) throw new EndRequested();
      await enter(phase);
      if (compensate) undo.unshift(compensate);
      await run();
    };
    try {
      await step(
        'PROVISIONING_NAMESPACE',
        () => quick.createNamespace(ref),
        () => teardown.deleteNamespace(ref),
      );
      let bound: { initialSync?: string } | undefined; // nothing from a worker before PROXY_SYNC_PATCH
      await step('PROVISIONING_VOLUME', async () => {
        // Waits while the volume's owner removes it; the owner then makes a new one.
        if (patched(VOLUME_OWNER_PATCH)) {
          claimedVolume = true;
          await volumeClaims.claimVolume(volumeClaim);
        }
        holdsVolume = true;
        bound = await quick.bindVolume(ref);
      });
      await step('PROVISIONING_CREDENTIALS', async () => {
        credentialsRenewAt = await quick.issueAgentCredentials(ref);
      });
      await step(
        'PROVISIONING_AGENT',
        () => steps.startAgent(ref),
        () => teardown.stopAgent(ref),
      );
      await step('PROVISIONING_AGENT_READY', async () => {
        session.agentAddress = await waits.waitForAgent(ref);
      });
      if (bound?.initialSync !== 'proxy' || !patched(PROXY_SYNC_PATCH)) {
        await step('PROVISIONING_SYNC', () => waits.syncWorkspace({ volume: ref.volume, workspace }));
      }
    } catch (err) {
      await CancellationScope.nonCancellable(async () => {
        for (const compensate of undo) await compensate();
      });
      session.agentAddress = null;
      if (err instanceof EndRequested) return finish('ENDED', 'ended', null);
      if (isCancellation(err)) return finish('ENDED', 'cancelled', 'cancelled during provisioning');
      return finish('FAILED', 'provisioning-failed', failureMessage(err), failureCode(err));
    }
    touch(true);
    await enter('READY');
  }

  async function suspend(): Promise<void> {
    suspendedAtSeq = activitySeq;
    await enter('SUSPENDING');
    await teardown.stopAgent(ref);
    session.agentAddress = null;
    await enter('SUSPENDED');
  }

  const wantedBack = () => activitySeq !== suspendedAtSeq;

  /** (Re)starts the agent: after a suspension, or when the running one stopped answering. */
  async function resume(): Promise<void> {
    try {
      await enter('RESUMING');
      // A suspended session may have outlived most of its agent certificate.
      if (patched('renew-agent-credentials')) credentialsRenewAt = await quick.issueAgentCredentials(ref);
      await steps.startAgent(ref);
      session.agentAddress = await waits.waitForAgent(ref);
      touch(true);
      await enter('READY');
    } catch (err) {
      if (isCancellation(err)) throw err;
      await end('agent-restart-failed', `agent restart failed: ${failureMessage(err)}`, false, 'FAILED', failureCode(err));
    }
  }

  /** Removes what the session created; the volume only when the session expires (before volume owners). */
  async function end(why: EndReason, reason: string | null, removeVolume: boolean, outcome: 'ENDED' | 'FAILED' = 'ENDED', code?: string) {
    await CancellationScope.nonCancellable(async () => {
      await enter('ENDING');
      await teardown.deleteNamespace(ref);
      if (removeVolume) await volumeRemoval.deleteVolume(ref);
      session.agentAddress = null;
      await finish(outcome, why, reason, code);
    });
  }

  /** `code`: a FAILED session's failure type, its search attribute (the text stays in the history). */
  async function finish(phase: 'ENDED' | 'FAILED', why: EndReason, reason: string | null, code?: string): Promise<void> {
    failedWith = code ?? null;
    // The volume's owner keeps it for the retention period from now, then removes it.
    const release = holdsVolume || (claimedVolume && patched(RELEASE_CLAIM_PATCH));
    const claim = holdsVolume ? volumeClaim : { ...volumeClaim, granted: false as const };
    if (release && patched(VOLUME_OWNER_PATCH)) await CancellationScope.nonCancellable(() => teardown.releaseVolume(claim));
    session.failureReason = reason;
    session.endReason = why;
    await CancellationScope.nonCancellable(() => enter(phase));
  }

  const historyFull = () => workflowInfo().historyLength >= timeouts.maxHistoryEvents || workflowInfo().continueAsNewSuggested;

  /** READY until idle: the idle timer restarts on every use; the agent is probed meanwhile. */
  async function serve(): Promise<void> {
    // A session busy for weeks is never suspended: its agent's certificate is renewed in place.
    if (Date.now() >= credentialsRenewAt && patched('renew-agent-credentials-while-serving')) {
      credentialsRenewAt = await quick.issueAgentCredentials(ref);
    }
    if (agentReported && patched('probe-reported-agent')) {
      try {
        if ((await steps.probeAgent(ref)) !== null) await replaceAgent();
      } finally {
        agentReported = false;
      }
      return;
    }
    const seen = activitySeq;
    const idleDeadline = Date.now() + timeouts.idleTimeoutMs;
    show({ idleDeadlineMs: idleDeadline });
    while (activitySeq === seen && !endRequested && !historyFull()) {
      const wait = Math.min(timeouts.agentProbeIntervalMs, idleDeadline - Date.now());
      if (wait <= 0) return suspend();
      if (await condition(() => activitySeq !== seen || endRequested || historyFull(), wait)) return;
      if (activitySeq !== seen || Date.now() >= idleDeadline) continue;
      if ((await steps.probeAgent(ref)) !== null) return replaceAgent();
    }
  }

  /** The agent does not answer: alive but not answering is as good as dead. */
  async function replaceAgent(): Promise<void> {
    show({ step: 'replacing the agent, which did not answer' });
    Object.assign(towardReady, { since: Date.now(), start: 'replace' });
    try {
      await teardown.stopAgent(ref);
      await resume();
    } finally {
      show({ step: undefined });
      towardReady.start = 'resume';
    }
  }

  async function rest(): Promise<void> {
    show({ retentionDeadlineMs: Date.now() + timeouts.retentionMs });
    const wanted = await condition(() => wantedBack() || endRequested || historyFull(), timeouts.retentionMs);
    if (!wanted) return end('expired', EXPIRY_REASON, !patched(VOLUME_OWNER_PATCH));
    if (wantedBack() && !endRequested) return resume();
  }

  // Decided once per run, before anything else is scheduled, and kept: a run begun with activity steps
  // keeps them once it runs live. Must stay first: the recorded histories have the marker here.
  const quick = patched(LOCAL_STEPS_PATCH) ? localSteps : steps;
  const derived = await placement(input);
  Object.assign(session, { namespace: derived.namespace, volume: derived.volume });
  timeouts = derived.timeouts;
  show({ backend: derived.backend });
  const ref = { namespace: session.namespace, volume: session.volume, sessionId: session.sessionId, user };
  const volumeClaim = { ...ref, workspace };

  try {
    // A continued run records itself, so the store names the run that now owns the session.
    if (carried) await enter(carried.phase);
    else await provision();
    while (!isTerminal(session.phase)) {
      if (endRequested) {
        await end('ended', null, false);
      } else if (session.phase === 'READY') {
        await serve();
      } else if (session.phase === 'SUSPENDED') {
        await rest();
      }
      // Continue as new only at rest: nothing pending that only this run's loop would carry out.
      const atRest = (session.phase === 'READY' && !agentReported) || (session.phase === 'SUSPENDED' && !wantedBack());
      if (atRest && !endRequested && historyFull()) {
        await condition(allHandlersFinished);
        const phase = session.phase as 'READY' | 'SUSPENDED';
        await continueAsNew<typeof sessionWorkflow>({ ...input, carried: { ...session, phase, seq: recordSeq } });
      }
    }
  } catch (err) {
    if (!isCancellation(err)) throw err;
    await end('cancelled', 'cancelled', false);
  }
  await condition(allHandlersFinished);
  return { ...session };
}

/**
 * Where the session runs and its timeouts: derived from (user, workspace) and the worker's own
 * configuration, never taken from the input, since whoever can start workflows could otherwise
 * point a session at another user's volume or have it expire at once. A run under any other
 * workflow id than the one (user, workspace) gives fails before it touches anything.
 */
async function placement(input: SessionInput): Promise<SessionPlacement & { timeouts: SessionTimeouts; backend?: string }> {
  if (!patched('derive-placement')) return { namespace: input.namespace!, volume: input.volume!, timeouts: input.timeouts! };
  const derived = await records.deriveSession({ user: input.user, workspace: input.workspace });
  if (derived.workflowId !== workflowInfo().workflowId) {
    throw ApplicationFailure.nonRetryable(
      `workflow id ${workflowInfo().workflowId} is not the session id of this user and workspace (${derived.workflowId})`,
      FAILURE.PLACEMENT_MISMATCH,
    );
  }
  return { namespace: derived.namespace, volume: derived.volume, timeouts: derived.timeouts, backend: derived.backend };
}

function failureMessage(err: unknown): string {
  // An ActivityFailure wraps the activity's own error: its message is the useful one.
  let cause = err as { message?: string; cause?: unknown };
  while (cause.cause) cause = cause.cause as typeof cause;
  return cause.message ?? String(err);
}
