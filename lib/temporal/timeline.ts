/**
 * A session's timeline, read from its workflow's history (`rbs describe`): each phase with its
 * start and duration and what kept it awake, each step (activity) with its duration, attempts and
 * outcome, and why the session is over. Pure: the orchestrator fetches the history, this reads it.
 *
 * A local activity leaves one marker, written with its workflow task's other commands once that
 * task completes (local-activity-marker.ts). It counts as a step if the workflow gave it a summary
 * (the store writes have none: they record the phases listed here). It began where what ran before
 * it in its workflow task ended, or when its first attempt was scheduled if that was well before (it
 * outlived a workflow task, or was retried): approximate. A phase entered after local activities
 * begins where the last of them (its store write) ended, not when the task's commands were written.
 */
import type { temporal } from '@temporalio/proto';
import type { CommandReport } from '../domain';
import { validateCommandReport } from '../validate';
import { jsonPayload } from './json-payload';
import { type LocalActivityMarker, localActivityMarker } from './local-activity-marker';
import { SESSION_END_REASON, SESSION_ID, SESSION_PHASE } from './search-attributes';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

export interface TimelinePhase {
  phase: string;
  startMs: number;
  /** Until the next phase began, or until `nowMs` while it lasts. */
  durationMs: number;
  ongoing: boolean;
  /** Heartbeats (commands, syncs) and GetServer calls that reached the session in this phase. */
  heartbeats: number;
  getServerCalls: number;
  /** The last of those, if any. */
  lastWakeMs: number | null;
}

export interface TimelineStep {
  activity: string;
  summary: string;
  startMs: number;
  durationMs: number;
  /** The attempt that ended it (retries before it are not in the history). */
  attempts: number;
  outcome: 'completed' | 'failed' | 'timed out' | 'cancelled' | 'running';
  failure: string;
}

/** A command a proxy reported as it ended (the heartbeat signal's second argument). */
export interface TimelineCommand {
  verb: string;
  endedAtMs: number;
  durationMs: number;
  exitCode: number;
}

/** How many of the last commands, and of the last steps, a timeline lists. */
export const TIMELINE_COMMANDS = 20;
export const TIMELINE_STEPS = 200;

export interface Timeline {
  startedMs: number;
  phases: TimelinePhase[];
  /** The last TIMELINE_STEPS, oldest first; `stepsOmitted` went before them. */
  steps: TimelineStep[];
  stepsOmitted: number;
  endReason: string;
  /** The last TIMELINE_COMMANDS, oldest first. */
  commands: TimelineCommand[];
}

/** A reported command as the orchestrator validated it; anything else (a signal sent straight to Temporal) is skipped. */
function commandOf(value: unknown): CommandReport | null {
  if (typeof value !== 'object' || value === null) return null;
  try {
    return validateCommandReport(value);
  } catch {
    return null;
  }
}

function timeMs(event: HistoryEvent): number {
  const t = event.eventTime;
  return t ? Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6) : 0;
}

/** A local activity that took this much longer than its place in the task says began when it was first scheduled. */
const LONG_LOCAL_ACTIVITY_MS = 1000;

/**
 * A local activity's step, if the workflow summarized it and it is no intermediate attempt; and when it
 * ended. `since`: where what ran before it in its task ended; `runStartMs`, `writtenMs`: its run's start
 * and when its marker was written, which bound it.
 */
function localStep(marker: LocalActivityMarker, since: number, runStartMs: number, writtenMs: number): { step: TimelineStep | null; doneMs: number } {
  const doneMs = Math.min(marker.completedMs ?? writtenMs, writtenMs);
  if (!marker.summary || marker.backingOff) return { step: null, doneMs };
  const first = marker.firstScheduledMs;
  const began = first !== null && first < since - LONG_LOCAL_ACTIVITY_MS ? Math.max(first, runStartMs) : since;
  const startMs = Math.min(began, doneMs);
  const { failure } = marker;
  const outcome = !failure ? 'completed' : failure.canceledFailureInfo ? 'cancelled' : failure.timeoutFailureInfo ? 'timed out' : 'failed';
  const step: TimelineStep = {
    activity: marker.activityType,
    summary: marker.summary,
    startMs,
    durationMs: doneMs - startMs,
    attempts: marker.attempt,
    outcome,
    failure: failure?.message ?? '',
  };
  return { step, doneMs };
}

/** The session ids a run's phase changes name (RbsSessionId): one, for a run of one session. */
export function runSessionIds(events: HistoryEvent[]): Set<string> {
  const ids = new Set<string>();
  for (const event of events) {
    const id = jsonPayload(event.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields?.[SESSION_ID.name]);
    if (typeof id === 'string') ids.add(id);
  }
  return ids;
}

/**
 * `runs`: the histories of the session's runs, oldest first (continue-as-new). Only heartbeats
 * for `sessionId` count: anyone who reaches Temporal can signal any id.
 */
export function sessionTimeline(runs: HistoryEvent[][], nowMs: number, sessionId: string): Timeline {
  const events = runs.flatMap((run, index) => run.map((event) => ({ event, run: index })));
  const phases: TimelinePhase[] = [];
  const steps = new Map<string, TimelineStep>();
  let endReason = '';
  let over: number | null = null;
  const commands: TimelineCommand[] = [];
  const current = () => phases[phases.length - 1];
  const wake = (at: number, kind: 'heartbeats' | 'getServerCalls') => {
    const phase = current();
    if (!phase) return;
    phase[kind]++;
    phase.lastWakeMs = at;
  };
  const settle = (event: HistoryEvent, step: TimelineStep | undefined, outcome: TimelineStep['outcome'], failure = '') => {
    if (step) Object.assign(step, { outcome, failure, durationMs: timeMs(event) - step.startMs });
  };
  /** Where the work of the current workflow task so far ended, and whether local activities did some of it. */
  let localSince = 0;
  let localThisTask = false;
  let runStartMs = 0;
  for (const { event, run } of events) {
    const at = timeMs(event);
    if (event.workflowExecutionStartedEventAttributes) runStartMs = at;
    if (event.workflowTaskStartedEventAttributes) [localSince, localThisTask] = [at, false];
    const local = localActivityMarker(event);
    if (local) {
      const { step, doneMs } = localStep(local, localSince, runStartMs, at);
      if (step) steps.set(`${run}:${String(event.eventId)}`, step);
      [localSince, localThisTask] = [Math.max(localSince, doneMs), true];
    }
    // Event ids start again at 1 in each run.
    const stepOf = (scheduledEventId: unknown) => steps.get(`${run}:${String(scheduledEventId)}`);
    const upsert = event.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields;
    const phase = upsert ? jsonPayload(upsert[SESSION_PHASE.name]) : undefined;
    if (typeof phase === 'string' && phase !== current()?.phase) {
      const startMs = localThisTask ? Math.min(localSince, at) : at;
      phases.push({ phase, startMs, durationMs: 0, ongoing: true, heartbeats: 0, getServerCalls: 0, lastWakeMs: null });
    }
    const reason = upsert ? jsonPayload(upsert[SESSION_END_REASON.name]) : undefined;
    if (typeof reason === 'string') endReason = reason;
    const signaled = event.workflowExecutionSignaledEventAttributes;
    if (signaled?.signalName === 'heartbeat' && jsonPayload(signaled.input?.payloads?.[0]) === sessionId) {
      wake(at, 'heartbeats');
      const command = commandOf(jsonPayload(signaled.input?.payloads?.[1]));
      if (command) commands.push({ ...command, endedAtMs: at });
    }
    if (event.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name === 'getServer') wake(at, 'getServerCalls');
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled) {
      const summary = jsonPayload(event.userMetadata?.summary);
      steps.set(`${run}:${String(event.eventId)}`, {
        activity: scheduled.activityType?.name ?? '',
        summary: typeof summary === 'string' ? summary : '',
        startMs: at,
        durationMs: 0,
        attempts: 1,
        outcome: 'running',
        failure: '',
      });
    }
    const started = event.activityTaskStartedEventAttributes;
    if (started) {
      const step = stepOf(started.scheduledEventId);
      if (step) step.attempts = started.attempt ?? 1;
    }
    const completed = event.activityTaskCompletedEventAttributes;
    if (completed) settle(event, stepOf(completed.scheduledEventId), 'completed');
    const failed = event.activityTaskFailedEventAttributes;
    if (failed) settle(event, stepOf(failed.scheduledEventId), 'failed', failed.failure?.message ?? '');
    const timedOut = event.activityTaskTimedOutEventAttributes;
    if (timedOut) settle(event, stepOf(timedOut.scheduledEventId), 'timed out', timedOut.failure?.message ?? '');
    const cancelled = event.activityTaskCanceledEventAttributes;
    if (cancelled) settle(event, stepOf(cancelled.scheduledEventId), 'cancelled');
    if (
      event.workflowExecutionCompletedEventAttributes ||
      event.workflowExecutionFailedEventAttributes ||
      event.workflowExecutionTerminatedEventAttributes ||
      event.workflowExecutionCanceledEventAttributes ||
      event.workflowExecutionTimedOutEventAttributes
    ) {
      over = at;
    }
    // Ended from outside, with no say of its own: an operator's terminate, a timeout.
    const terminated = event.workflowExecutionTerminatedEventAttributes;
    if (terminated && !endReason) endReason = `terminated${terminated.reason ? `: ${terminated.reason}` : ''}`;
    if (event.workflowExecutionTimedOutEventAttributes && !endReason) endReason = 'workflow timed out';
    if (event.workflowExecutionContinuedAsNewEventAttributes) over = null;
  }
  const end = over ?? nowMs;
  phases.forEach((phase, i) => {
    const next = phases[i + 1];
    phase.ongoing = !next && over === null;
    phase.durationMs = (next ? next.startMs : end) - phase.startMs;
  });
  for (const step of steps.values()) if (step.outcome === 'running') step.durationMs = end - step.startMs;
  const started = events.find(({ event }) => event.workflowExecutionStartedEventAttributes);
  const all = [...steps.values()];
  return {
    startedMs: started ? timeMs(started.event) : 0,
    phases,
    steps: all.slice(-TIMELINE_STEPS),
    stepsOmitted: Math.max(0, all.length - TIMELINE_STEPS),
    endReason,
    commands: commands.slice(-TIMELINE_COMMANDS),
  };
}
