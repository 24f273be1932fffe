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
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { RetryPolicy } from '@temporalio/common';
import type { createActivities } from '../activities';
import { isTerminal, type SessionPhase } from '../lib/domain';
import {
  FAILURE,
  endUpdate,
  getServerUpdate,
  heartbeatSignal,
  issueProxyCertificateUpdate,
  sessionQuery,
  type SessionInput,
  type SessionView,
} from './messages';
import { SESSION_ID, SESSION_PHASE } from './search-attributes';

type Activities = ReturnType<typeof createActivities>;

const RETRY: RetryPolicy = { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '5s' };

/** Quick, idempotent steps. A step that keeps failing gives up after two minutes. */
const steps = proxyActivities<Activities>({
  startToCloseTimeout: '15s',
  scheduleToCloseTimeout: '2m',
  retry: RETRY,
});

/** Steps that wait on something outside (an agent starting, an rsync): they heartbeat. */
const waits = proxyActivities<Activities>({
  startToCloseTimeout: '10m',
  heartbeatTimeout: '10s',
  scheduleToCloseTimeout: '15m',
  retry: RETRY,
});

/** Store writes of phase changes: quick, and run in the worker without a task dispatch of their own. */
const records = proxyLocalActivities<Activities>({ startToCloseTimeout: '10s', retry: RETRY });

/** Teardown must finish: retried until it does. */
const teardown = proxyActivities<Activities>({ startToCloseTimeout: '1m', retry: RETRY });

class EndRequested extends Error {}

export async function sessionWorkflow(input: SessionInput): Promise<SessionView> {
  const { namespace, volume, user, workspace, timeouts } = input;
  const carried = input.carried;
  const session: SessionView = {
    sessionId: carried?.sessionId ?? uuid4(),
    workflowId: workflowInfo().workflowId,
    user,
    workspace,
    namespace,
    volume,
    phase: carried?.phase ?? 'PROVISIONING_NAMESPACE',
    agentAddress: carried?.agentAddress ?? null,
    failureReason: null,
    createdAtMs: carried?.createdAtMs ?? Date.now(),
    lastActivityAtMs: carried?.lastActivityAtMs ?? Date.now(),
  };
  let activitySeq = 0;
  let resumeRequested = false;
  let endRequested = false;

  const touch = () => {
    activitySeq++;
    session.lastActivityAtMs = Date.now();
  };

  setHandler(sessionQuery, () => ({ ...session }));
  // A heartbeat means someone is using the session: one that is (being) suspended comes back.
  setHandler(heartbeatSignal, (sessionId) => {
    if (sessionId !== session.sessionId) return;
    touch();
    if (session.phase === 'SUSPENDING' || session.phase === 'SUSPENDED') resumeRequested = true;
  });
  setHandler(getServerUpdate, async () => {
    touch();
    if (session.phase === 'SUSPENDING' || session.phase === 'SUSPENDED') resumeRequested = true;
    await condition(() => session.phase === 'READY' || session.phase === 'ENDING' || isTerminal(session.phase));
    if (session.phase === 'READY') return { ...session };
    if (session.phase === 'FAILED') {
      throw ApplicationFailure.create({
        type: FAILURE.SESSION_FAILED,
        message: `session ${session.sessionId} failed: ${session.failureReason}`,
        nonRetryable: true,
      });
    }
    throw ApplicationFailure.create({
      type: FAILURE.SESSION_ENDING,
      message: `session ${session.sessionId} is ending`,
      nonRetryable: true,
    });
  });
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

  /** Records the phase first, so whoever sees the new phase finds the store already agreeing. */
  setHandler(
    issueProxyCertificateUpdate,
    async (_sessionId, publicKeyPem) => {
      touch();
      return steps.issueProxyCertificate({ sessionId: session.sessionId, user, publicKeyPem });
    },
    {
      validator: (sessionId, publicKeyPem) => {
        if (sessionId !== session.sessionId) {
          throw ApplicationFailure.create({ type: FAILURE.SESSION_NOT_FOUND, message: `session ${sessionId} is not the one in ${session.workflowId}`, nonRetryable: true });
        }
        if (session.phase === 'ENDING' || isTerminal(session.phase)) {
          throw ApplicationFailure.create({ type: FAILURE.SESSION_ENDING, message: `session ${sessionId} is ${session.phase}`, nonRetryable: true });
        }
        if (typeof publicKeyPem !== 'string' || publicKeyPem.length > 4096) {
          throw ApplicationFailure.create({ type: FAILURE.INVALID_PUBLIC_KEY, message: 'public key must be a PEM of at most 4096 characters', nonRetryable: true });
        }
      },
    },
  );

  async function enter(phase: SessionPhase): Promise<void> {
    await CancellationScope.nonCancellable(() => records.recordSession({ ...session, phase }));
    session.phase = phase;
    upsertSearchAttributes([
      { key: SESSION_PHASE, value: phase },
      { key: SESSION_ID, value: session.sessionId },
    ]);
  }

  const ref = { namespace, volume, sessionId: session.sessionId, user };

  /** The saga: each step registers how to undo it; a step that fails for good undoes them all. */
  async function provision(): Promise<void> {
    const undo: Array<() => Promise<void>> = [];
    const step = async (phase: SessionPhase, run: () => Promise<void>, compensate?: () => Promise<void>) => {
      if (endRequested) throw new EndRequested();
      await enter(phase);
      if (compensate) undo.unshift(compensate);
      await run();
    };
    try {
      await step('PROVISIONING_NAMESPACE', () => steps.createNamespace(ref), () => teardown.deleteNamespace(ref));
      await step('PROVISIONING_VOLUME', () => steps.bindVolume(ref));
      await step('PROVISIONING_CREDENTIALS', () => steps.issueAgentCredentials(ref));
      await step('PROVISIONING_AGENT', () => steps.startAgent(ref), () => teardown.stopAgent(ref));
      await step('PROVISIONING_AGENT_READY', async () => {
        session.agentAddress = await waits.waitForAgent(ref);
      });
      await step('PROVISIONING_SYNC', () => waits.syncWorkspace({ volume, workspace }));
    } catch (err) {
      await CancellationScope.nonCancellable(async () => {
        for (const compensate of undo) await compensate();
      });
      session.agentAddress = null;
      if (err instanceof EndRequested) return finish('ENDED', null);
      if (isCancellation(err)) return finish('ENDED', 'cancelled during provisioning');
      return finish('FAILED', failureMessage(err));
    }
    touch();
    await enter('READY');
  }

  async function suspend(): Promise<void> {
    await enter('SUSPENDING');
    await teardown.stopAgent(ref);
    session.agentAddress = null;
    await enter('SUSPENDED');
  }

  async function resume(): Promise<void> {
    resumeRequested = false;
    await enter('RESUMING');
    await steps.startAgent(ref);
    session.agentAddress = await waits.waitForAgent(ref);
    touch();
    await enter('READY');
  }

  /** Removes what the session created; the volume only when the session expires. */
  async function end(reason: string | null, removeVolume: boolean, outcome: 'ENDED' | 'FAILED' = 'ENDED') {
    await CancellationScope.nonCancellable(async () => {
      await enter('ENDING');
      await teardown.deleteNamespace(ref);
      if (removeVolume) await teardown.deleteVolume(ref);
      session.agentAddress = null;
      await finish(outcome, reason);
    });
  }

  async function finish(phase: 'ENDED' | 'FAILED', reason: string | null): Promise<void> {
    session.failureReason = reason;
    await CancellationScope.nonCancellable(() => enter(phase));
  }

  const historyFull = () =>
    workflowInfo().historyLength >= timeouts.maxHistoryEvents || workflowInfo().continueAsNewSuggested;

  try {
    if (!carried) await provision();
    while (!isTerminal(session.phase)) {
      if (endRequested) {
        await end(null, false);
      } else if (session.phase === 'READY') {
        const seen = activitySeq;
        const active = await condition(() => activitySeq !== seen || endRequested || historyFull(), timeouts.idleTimeoutMs);
        if (!active) await suspend();
      } else if (session.phase === 'SUSPENDED') {
        if (!resumeRequested) {
          const wanted = await condition(() => resumeRequested || endRequested || historyFull(), timeouts.retentionMs);
          if (!wanted) await end('expired after retention', true);
        }
        if (resumeRequested && !endRequested) {
          await resume().catch((err) => {
            if (isCancellation(err)) throw err;
            return end(`resume failed: ${failureMessage(err)}`, false, 'FAILED');
          });
        }
      }
      if (!isTerminal(session.phase) && !endRequested && historyFull()) {
        await condition(allHandlersFinished);
        const phase = session.phase as 'READY' | 'SUSPENDED';
        await continueAsNew<typeof sessionWorkflow>({ ...input, carried: { ...session, phase } });
      }
    }
  } catch (err) {
    if (!isCancellation(err)) throw err;
    await end('cancelled', false);
  }
  await condition(allHandlersFinished);
  return { ...session };
}

function failureMessage(err: unknown): string {
  // An ActivityFailure wraps the activity's own error: its message is the useful one.
  let cause = err as { message?: string; cause?: unknown };
  while (cause.cause) cause = cause.cause as typeof cause;
  return cause.message ?? String(err);
}
