/**
 * What the orchestrator does with sessions, in domain terms: start-or-attach, watch, heartbeat,
 * end. Identity checks happen before these are called; ownership checks happen here.
 */
import type { Logger } from '../../lib/log';
import * as grpc from '@grpc/grpc-js';
import { WithStartWorkflowOperation, WorkflowNotFoundError, type Client } from '@temporalio/client';
import {
  activityDebounceMs,
  type CommandReport,
  isSessionPhase,
  isTerminal,
  type SessionPhase,
  type Session,
  sessionOf,
  type SessionPlacement,
  type SessionRecord,
} from '../../lib/domain';
import { InvalidPublicKeyError } from '../../lib/pki/ca';
import type { CertificateSigner } from '../../lib/pki/signer';
import { placementFor, workflowIdFor } from '../../lib/naming';
import type { SessionStore } from '../../lib/store/session-store';
import { validateAgentAddress, validateSessionId, validateWorkspacePath } from '../../lib/validate';
import { FAILURE, endUpdate, sessionFailedMessage, getServerUpdate, heartbeatSignal, sessionQuery, type SessionTimeouts } from '../../workflows/messages';
import { SESSION_ID, SESSION_NAMESPACE, SESSION_PHASE, SESSION_USER } from '../../lib/temporal/search-attributes';
import type { sessionWorkflow } from '../../workflows';
import { sessionStaticDetails, sessionSummary } from '../../workflows/details';
import { runSessionIds, sessionTimeline, type Timeline } from '../../lib/temporal/timeline';
import type { temporal } from '@temporalio/proto';
import { RpcError, updateFailure } from './errors';
import type { Limits } from './limits';
import type { GetServerPath, OrchestratorMetrics } from './metrics';

export interface Caller {
  user: string;
  operator: boolean;
}

export interface SessionsOptions {
  temporal: Client;
  store: SessionStore;
  taskQueue: string;
  timeouts: SessionTimeouts;
  /** Signs proxy certificates, once ownership is checked here: the workflow never does. */
  signer: CertificateSigner;
  proxyCertificateValidityMs: number;
  limits: Pick<Limits, 'admitSession'>;
  metrics?: Pick<OrchestratorMetrics, 'getServerDone'>;
  /** One line per session served: who, which session, which path, how long (inside the call's span: with its trace id). */
  log?: Pick<Logger, 'info'>;
}

/** Past this many, the debounce forgets sessions whose window has passed. */
const MAX_DEBOUNCED_SESSIONS = 10_000;

/** An SPKI PEM of a P-256 key is under 200 characters; anything near this is not one. */
const MAX_PUBLIC_KEY_PEM = 4096;

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/** A session that continued as new more often than this is described from its latest runs only. */
const MAX_TIMELINE_RUNS = 5;

/** How long a proxy certificate waits for the workflow to answer before Temporal's record of the run decides. */
const LIVE_QUERY_DEADLINE_MS = 3000;

/** A session that is ending cannot be attached to; wait for it to finish, then start anew. */
const MAX_ATTACH_ATTEMPTS = 3;

/** A session as its workflow answered: runs from before end reasons answer without one. */
function fromWorkflow(session: Session): Session {
  return { ...session, endReason: session.endReason ?? null };
}

export class Sessions {
  /** At most one heartbeat signal per session per window (GetServer, Heartbeat) from this replica. */
  private readonly heartbeatDebounceMs: number;
  /** When this replica last told each session's workflow of activity: a heartbeat signal, or GetServer's update. */
  private readonly signalled = new Map<string, number>();
  /** Users with a timeline being read at this replica (timeline()). */
  private readonly describing = new Set<string>();

  constructor(private readonly options: SessionsOptions) {
    this.heartbeatDebounceMs = activityDebounceMs(options.timeouts);
  }

  /**
   * `unreachableAgent`: the caller could not reach that agent. The store's READY row cannot say
   * whether it still answers, so the session's workflow is asked: it probes the agent at once.
   * `admitted`: the caller's admission, which may still be under way: only reads happen before it.
   */
  async getServer(caller: Caller, rawWorkspace: string, unreachableAgent?: string, admitted: Promise<void> = Promise.resolve()): Promise<Session> {
    const started = performance.now();
    const served = (path: GetServerPath, view: Session) => {
      const seconds = (performance.now() - started) / 1000;
      this.options.metrics?.getServerDone(path, seconds);
      const { sessionId, phase } = view;
      this.options.log?.info({ rpc: 'GetServer', user: caller.user, sessionId, path, phase, durationMs: Math.round(seconds * 1000) }, 'session served');
      return view;
    };
    const workspace = validateWorkspacePath(rawWorkspace);
    if (unreachableAgent !== undefined) validateAgentAddress(unreachableAgent);
    const placement = placementFor(caller.user, workspace);
    const workflowId = workflowIdFor(placement.namespace);
    const ready = unreachableAgent ? null : await this.attachReady(caller, workflowId, admitted);
    if (ready) return served('fast', ready);
    await admitted;
    const release = await this.options.limits.admitSession(caller.user, { workflowId, volume: placement.volume });
    try {
      const view = await this.startOrAttach(caller, workspace, placement, workflowId, unreachableAgent);
      // The update told the workflow of this use as a heartbeat would have: it opens the debounce window.
      this.signalled.set(view.sessionId, Date.now());
      return served('slow', view);
    } finally {
      release();
    }
  }

  private async startOrAttach(caller: Caller, workspace: string, placement: SessionPlacement, workflowId: string, unreachableAgent?: string): Promise<Session> {
    for (let attempt = 1; ; attempt++) {
      const start = new WithStartWorkflowOperation<typeof sessionWorkflow>('sessionWorkflow', {
        workflowId,
        taskQueue: this.options.taskQueue,
        args: [{ user: caller.user, workspace }],
        workflowIdConflictPolicy: 'USE_EXISTING',
        staticSummary: sessionSummary(caller.user, workspace),
        staticDetails: sessionStaticDetails(placement),
        typedSearchAttributes: [
          { key: SESSION_USER, value: caller.user },
          { key: SESSION_NAMESPACE, value: placement.namespace },
          { key: SESSION_PHASE, value: 'PROVISIONING_NAMESPACE' },
        ],
      });
      try {
        const view = await this.options.temporal.workflow.executeUpdateWithStart(getServerUpdate, {
          args: unreachableAgent ? [caller.user, unreachableAgent] : [caller.user],
          startWorkflowOperation: start,
        });
        return this.ownView(caller, fromWorkflow(view));
      } catch (err) {
        if (updateFailure(err)?.type !== FAILURE.SESSION_ENDING || attempt >= MAX_ATTACH_ATTEMPTS) throw err;
        // The latest run's end: the SDK does not say which run refused. Another run of this workflow is a session of
        // the same user and workspace, started meanwhile by another of their commands.
        const result: Session | undefined = await (await start.workflowHandle()).result().catch(() => undefined);
        const ended = result && this.ownView(caller, fromWorkflow(result));
        // The agent this caller reported could not be replaced (nor could any other, whatever asked for it): that is
        // this command's answer. A new session would most likely fail alike (a lost node holding the volume), after
        // another deadline; the next command starts one.
        if (unreachableAgent !== undefined && ended?.phase === 'FAILED' && ended.endReason === 'agent-restart-failed') {
          throw new RpcError(grpc.status.FAILED_PRECONDITION, sessionFailedMessage(ended));
        }
      }
    }
  }

  /**
   * The fast path for a session the store shows READY. The run the store names must still be
   * running: delivering a heartbeat to it proves that (a server-side write; no round trip through
   * the worker, unlike an update) and counts as activity; within the heartbeat debounce, a describe
   * of the run does (an operator may have terminated it a moment ago). Should the session be
   * suspending at this very moment, the heartbeat resumes it and a client that finds the old agent
   * gone asks again. Anything else takes Update-With-Start.
   *
   * The store and Temporal are asked at once, while the caller's admission is read (one round
   * trip, not three): the describe is of the workflow's latest run, which must be the run the
   * store names. Nothing is signalled or answered before the caller is admitted.
   */
  private async attachReady(caller: Caller, workflowId: string, admitted: Promise<void>): Promise<Session | null> {
    const running = this.runningRunId(workflowId);
    running.catch(() => undefined); // awaited below unless the store shows nothing READY, or a heartbeat is due
    const listing = this.options.store.list({ user: caller.user, phases: ['READY'] });
    listing.catch(() => undefined); // awaited below, once admitted
    await admitted;
    const ready = (await listing).find((r) => r.workflowId === workflowId);
    if (!ready) return null;
    let lastActivityAtMs: number;
    try {
      // The run the store names: a run that has finished (say, terminated) is not found by a signal.
      if (this.heartbeatDue(ready)) lastActivityAtMs = await this.recordActivity(ready, ready.runId);
      else if ((await running) === ready.runId) lastActivityAtMs = ready.lastActivityAtMs;
      else return null;
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return null;
      throw err;
    }
    return { ...sessionOf(ready), lastActivityAtMs };
  }

  /** The id of the workflow's latest run if that run is running, else null. */
  private async runningRunId(workflowId: string): Promise<string | null> {
    const description = await this.options.temporal.workflow.getHandle(workflowId).describe();
    return description.status.name === 'RUNNING' ? description.runId : null;
  }

  /** The current state of the caller's session for a workspace, or null before it exists. */
  async viewByWorkspace(caller: Caller, rawWorkspace: string): Promise<Session | null> {
    const workspace = validateWorkspacePath(rawWorkspace);
    const view = await this.query(workflowIdFor(placementFor(caller.user, workspace).namespace));
    return view && this.ownView(caller, view);
  }

  /**
   * What the store shows of a watched session, read instead of querying the workflow while
   * nothing changes (WatchSession): a mark that changes whenever a row does, and the newest row's
   * phase. The workflow writes a phase to the store before it takes it on (enter()).
   */
  async progressMark(caller: Caller, target: { sessionId: string } | { workspace: string }): Promise<{ mark: string; phase: SessionPhase | null }> {
    let rows: SessionRecord[];
    if ('sessionId' in target) {
      rows = [await this.owned(caller, target.sessionId)];
    } else {
      const workflowId = workflowIdFor(placementFor(caller.user, validateWorkspacePath(target.workspace)).namespace);
      rows = (await this.options.store.list({ user: caller.user })).filter((r) => r.workflowId === workflowId);
    }
    rows.sort((a, b) => a.createdAtMs - b.createdAtMs);
    // What a watcher is told of: a session, its run and its phase (not its activity, which the workflow also records).
    const mark = rows.map((r) => `${r.sessionId}:${r.runId}:${r.phase}`).join(',');
    return { mark, phase: rows.at(-1)?.phase ?? null };
  }

  async viewById(caller: Caller, sessionId: string): Promise<Session | null> {
    const record = await this.owned(caller, sessionId);
    const view = await this.query(record.workflowId);
    return view?.sessionId === record.sessionId ? view : null;
  }

  /** `command`: one that just ended, which the workflow's history keeps for the timeline: sent at once, never debounced. */
  async heartbeat(caller: Caller, sessionId: string, command?: CommandReport): Promise<SessionRecord> {
    const record = await this.owned(caller, sessionId);
    if (isTerminal(record.phase)) {
      throw new RpcError(grpc.status.FAILED_PRECONDITION, `session ${sessionId} has ${record.phase}`);
    }
    return { ...record, lastActivityAtMs: await this.recordActivity(record, undefined, command) };
  }

  /**
   * Tells the workflow (run `runId`, else the latest) of activity on the session, unless this replica
   * did within the debounce window: the workflow needs to hear of it only a few times per idle period,
   * and records it in the store itself, a moment later. Returns the time as it now stands. The window
   * is kept here, on this replica's clock, not read from the store: it must hold whether or not the
   * workflow has written yet, and whatever the Temporal server's clock says.
   */
  private async recordActivity(record: SessionRecord, runId?: string, command?: CommandReport): Promise<number> {
    if (!command && !this.heartbeatDue(record)) return record.lastActivityAtMs;
    const now = Date.now();
    const args: [string, CommandReport?] = command ? [record.sessionId, command] : [record.sessionId];
    await this.options.temporal.workflow.getHandle(record.workflowId, runId).signal(heartbeatSignal, ...args);
    this.signalled.set(record.sessionId, now);
    return now;
  }

  private heartbeatDue(record: SessionRecord): boolean {
    const now = Date.now();
    if (this.signalled.size > MAX_DEBOUNCED_SESSIONS) {
      for (const [sessionId, at] of this.signalled) if (now - at >= this.heartbeatDebounceMs) this.signalled.delete(sessionId);
    }
    return now - (this.signalled.get(record.sessionId) ?? 0) >= this.heartbeatDebounceMs;
  }

  async list(caller: Caller, allUsers: boolean, includeFinished: boolean): Promise<SessionRecord[]> {
    if (allUsers && !caller.operator) {
      throw new RpcError(grpc.status.PERMISSION_DENIED, `user '${caller.user}' is not an operator: cannot list all sessions`);
    }
    const sessions = await this.options.store.list(allUsers ? {} : { user: caller.user });
    return includeFinished ? sessions : sessions.filter((s) => !isTerminal(s.phase));
  }

  async describe(caller: Caller, sessionId: string): Promise<SessionRecord> {
    return this.owned(caller, sessionId);
  }

  /**
   * The session's timeline, read from its workflow's history, its earlier runs (continue-as-new)
   * included. One at a time per user at this replica: each reads up to MAX_TIMELINE_RUNS histories.
   */
  async timeline(caller: Caller, sessionId: string): Promise<{ record: SessionRecord; timeline: Timeline; earlierRunsOmitted: boolean }> {
    const record = await this.owned(caller, sessionId);
    if (this.describing.has(caller.user)) {
      throw new RpcError(grpc.status.RESOURCE_EXHAUSTED, `user '${caller.user}' is already describing a session at this orchestrator replica: wait for it`);
    }
    this.describing.add(caller.user);
    try {
      const { runs, earlierRunsOmitted } = await this.sessionRuns(record);
      return { record, timeline: sessionTimeline(runs, Date.now(), record.sessionId), earlierRunsOmitted };
    } finally {
      this.describing.delete(caller.user);
    }
  }

  /**
   * The histories of the session's runs, oldest first. An earlier run counts only if it continued
   * as new into the run after it and names no other session: a run started by retry or by hand
   * also carries a predecessor's id. The store names the run that last recorded a phase, so runs
   * it continued into since are read too.
   */
  private async sessionRuns(record: SessionRecord): Promise<{ runs: HistoryEvent[][]; earlierRunsOmitted: boolean }> {
    const history = async (runId: string) => (await this.options.temporal.workflow.getHandle(record.workflowId, runId).fetchHistory()).events ?? [];
    const ours = (events: HistoryEvent[]) => [...runSessionIds(events)].every((id) => id === record.sessionId);
    const runs: HistoryEvent[][] = [];
    try {
      runs.push(await history(record.runId));
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
      throw new RpcError(grpc.status.NOT_FOUND, `the history of session ${record.sessionId} (run ${record.runId}) is no longer kept by Temporal`);
    }
    for (let runId = record.runId; runs.length < MAX_TIMELINE_RUNS;) {
      const next = runs.at(-1)!.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId;
      if (!next) break;
      const events = await history(next).catch((err: unknown) => {
        if (err instanceof WorkflowNotFoundError) return [];
        throw err;
      });
      if (events[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId !== runId || !ours(events)) break;
      runs.push(events);
      runId = next;
    }
    for (let newer = record.runId; ;) {
      const runId = runs[0][0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId;
      if (!runId) return { runs, earlierRunsOmitted: false };
      if (runs.length === MAX_TIMELINE_RUNS) return { runs, earlierRunsOmitted: true };
      let events: HistoryEvent[];
      try {
        events = await history(runId);
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
        return { runs, earlierRunsOmitted: true }; // past Temporal's retention: describe what is kept
      }
      if (events.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId !== newer || !ours(events)) {
        return { runs, earlierRunsOmitted: false };
      }
      runs.unshift(events);
      newer = runId;
    }
  }

  async end(caller: Caller, sessionId: string): Promise<SessionRecord> {
    const record = await this.owned(caller, sessionId);
    if (isTerminal(record.phase)) return record;
    try {
      await this.options.temporal.workflow.getHandle(record.workflowId).executeUpdate(endUpdate, { args: [sessionId] });
    } catch (err) {
      // The workflow has already finished (or is a newer session): the store row says how it ended.
      if (!(err instanceof WorkflowNotFoundError) && updateFailure(err)?.type !== FAILURE.SESSION_NOT_FOUND) throw err;
    }
    return this.owned(caller, sessionId);
  }

  /**
   * A certificate for the caller's proxy of one of its own live sessions (operators get none for
   * others'). Ownership is checked against the workflow itself, not only the store's projection.
   */
  async issueProxyCertificate(caller: Caller, sessionId: string, publicKeyPem: string): Promise<{ certificatePem: string; caCertificatePem: string }> {
    const record = await this.owned({ ...caller, operator: false }, sessionId);
    if (publicKeyPem.length > MAX_PUBLIC_KEY_PEM) {
      throw new RpcError(grpc.status.INVALID_ARGUMENT, `public key must be a PEM of at most ${MAX_PUBLIC_KEY_PEM} characters`);
    }
    const live = await this.liveView(record.workflowId);
    if (!live || live.sessionId !== record.sessionId || live.user !== caller.user || live.phase === 'ENDING' || isTerminal(live.phase)) {
      throw new RpcError(grpc.status.FAILED_PRECONDITION, `session ${sessionId} is ${live?.sessionId === record.sessionId ? live.phase : 'no longer running'}`);
    }
    const { signer, proxyCertificateValidityMs: validityMs } = this.options;
    try {
      const certificatePem = await signer.certifyPublicKey({ kind: 'proxy', sessionId: record.sessionId, user: caller.user }, publicKeyPem, { validityMs });
      return { certificatePem, caCertificatePem: signer.caCertPem };
    } catch (err) {
      if (err instanceof InvalidPublicKeyError) throw new RpcError(grpc.status.INVALID_ARGUMENT, err.message);
      throw err;
    }
  }

  /** A view is handed only to its own user: a workflow under the caller's id may be someone else's. */
  private ownView(caller: Caller, view: Session): Session {
    if (view.user !== caller.user) throw new RpcError(grpc.status.NOT_FOUND, `no session of '${caller.user}' in ${view.workflowId}`);
    return view;
  }

  /** The session's row, if the caller may see it; NOT_FOUND otherwise (never reveals others' sessions). */
  private async owned(caller: Caller, rawSessionId: string): Promise<SessionRecord> {
    const sessionId = validateSessionId(rawSessionId);
    const record = await this.options.store.get(sessionId);
    if (!record || (record.user !== caller.user && !caller.operator)) {
      throw new RpcError(grpc.status.NOT_FOUND, `session ${sessionId} not found`);
    }
    return record;
  }

  /**
   * The session as its workflow says. A worker that is down or frozen, or a workflow task failing
   * until Temporal retries it, leaves the workflow unable to answer for a while: Temporal's own record
   * of the run then says whether it is a live session, so that a build that needs no workflow is not
   * failed by one.
   */
  private async liveView(workflowId: string): Promise<Pick<Session, 'sessionId' | 'user' | 'phase'> | null> {
    try {
      return await this.options.temporal.connection.withDeadline(Date.now() + LIVE_QUERY_DEADLINE_MS, () => this.query(workflowId));
    } catch {
      return this.described(workflowId);
    }
  }

  /** The running session under this id as its search attributes describe it; null if none runs. */
  private async described(workflowId: string): Promise<Pick<Session, 'sessionId' | 'user' | 'phase'> | null> {
    const description = await this.options.temporal.workflow.getHandle(workflowId).describe();
    const [sessionId, user, phase] = [SESSION_ID, SESSION_USER, SESSION_PHASE].map((key) => description.typedSearchAttributes.get(key));
    if (description.type !== 'sessionWorkflow' || description.status.name !== 'RUNNING') return null;
    if (!sessionId || !user || !phase || !isSessionPhase(phase)) return null;
    return { sessionId, user, phase };
  }

  private async query(workflowId: string): Promise<Session | null> {
    try {
      return fromWorkflow(await this.options.temporal.workflow.getHandle(workflowId).query(sessionQuery));
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return null;
      throw err;
    }
  }
}
