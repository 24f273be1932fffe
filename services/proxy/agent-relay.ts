/**
 * The production CommandRelay: each command syncs the workspace, then runs on the session's agent,
 * with heartbeats keeping the session from going idle while it runs.
 */
import * as grpc from '@grpc/grpc-js';
import { unlessAborted } from '../../lib/abort';
import { channelReady } from '../../lib/grpc/channel-ready';
import { type RunTarget__Output, runTargetOf } from '../../lib/run-target';
import { ignoredInputWatch } from '../../lib/sync/ignored-input-hint';
import { inSpan } from '../../lib/tracing/tracing';
import { bazelRunOf } from './bazel-run';
import { buildEventDelivery } from './build-event-files';
import { type CommandRelay, INTERRUPT_DEADLINE_MS, type RunRequest, type RunResponse } from './command-server';
import { commandOutputs } from './outputs';
import { openSession, type SessionLink } from './session';
import { AgentUnreachableError } from './sync';
import { workspaceSyncer } from './workspace-syncer';

/** Well inside any sensible idle timeout, and rare enough to cost nothing. */
const HEARTBEAT_MS = 30_000;

export interface AgentRelayOptions {
  /** The workspace on this machine (the client's --workspace_directory). */
  workspace: string;
  /** The client's output base on this machine, which the agent maps to its own. */
  outputBase: string;
  /** Progress for the developer, e.g. to the proxy's log. */
  log: (message: string) => void;
}

export interface AgentRelay extends CommandRelay {
  /** Stops the session's Bazel server (the client asked its server to go away). */
  shutdown(): Promise<void>;
  close(): void;
}

export function agentRelay({ workspace, outputBase, log }: AgentRelayOptions): AgentRelay {
  let link: Promise<SessionLink> | undefined;
  const syncer = workspaceSyncer(workspace, outputBase, log);

  /** Opens the session; a failure fails this command only, and the next one asks again. */
  const open = (tell: (message: string) => void, unreachableAgent?: string) => {
    const opening = openSession(workspace, log, { unreachableAgent, tell }).then(
      (l) => (log(`session ${l.session.sessionId}: agent ${l.session.agentAddress}`), l),
    );
    opening.catch(() => link === opening && (link = undefined));
    return opening;
  };
  const session = (tell: (message: string) => void) => (link ??= open(tell));
  /**
   * Starts over once: the agent moved (the session was suspended and resumed), or it did not answer,
   * which the session is told, so that it probes the agent at once and the next one is waited for.
   * `tell` reaches the developer's terminal.
   */
  const reopen = async (stale: SessionLink, retry: Retry, tell: (message: string) => void) => {
    if ((await link) === stale) {
      stale.close();
      const unreachableAgent = retry.agentGone ? stale.session.agentAddress : undefined;
      if (unreachableAgent) {
        tell(`the agent at ${unreachableAgent} did not answer (${retry.why}): waiting for the session to check it, and to replace it if it is gone`);
        // Its successor may answer at the same address (a Kubernetes Service's), with none of our syncs.
        syncer.markDirty();
      }
      link = open(tell, unreachableAgent);
    }
    return session(tell);
  };

  /**
   * Resolves null once the command ran, or with why it never reached the agent (gone, or it lost
   * our sync): then it may be retried.
   */
  async function runOn(
    l: SessionLink,
    request: RunRequest,
    onResponse: (r: RunResponse) => void,
    signal: AbortSignal,
    onRunTarget: (target: RunTarget__Output) => void,
  ): Promise<Retry | null> {
    await unlessAborted(
      channelReady(l.agent, (why) => new AgentUnreachableError(`the agent at ${l.session.agentAddress}: ${why}`)),
      signal,
    );
    const syncId = await syncer.sync(l.agent, l.session, signal);
    signal.throwIfAborted();
    const heartbeat = setInterval(() => l.orchestrator.heartbeat(l.session.sessionId).catch(() => undefined), HEARTBEAT_MS);
    // The command's end reaches the client once its outputs are on this machine. The agent client
    // is read when it is used: the certificate may have been renewed (a new client) by then.
    const outputs = commandOutputs(request, onResponse, {
      get agent() {
        return l.agent;
      },
      workspace,
      outputBase,
      log,
    });
    try {
      const outcome = await new Promise<Retry | null>((resolve, reject) => {
        let streamed = false;
        const call = l.agent.run({ request, clientWorkspace: workspace, clientOutputBase: outputBase, syncId });
        // Interrupted: the remote Bazel server is asked to stop the command as Ctrl-C would, so its
        // own messages and exit code come through; the call is dropped if it has not ended in time.
        let agentCommandId = '';
        let hardStop: NodeJS.Timeout | undefined;
        const cancel = () => {
          if (agentCommandId) l.agent.cancel({ commandId: agentCommandId }, { deadline: Date.now() + INTERRUPT_DEADLINE_MS }, () => undefined);
          else call.cancel();
          hardStop = setTimeout(() => call.cancel(), INTERRUPT_DEADLINE_MS);
        };
        signal.addEventListener('abort', cancel, { once: true });
        const done = () => (signal.removeEventListener('abort', cancel), clearTimeout(hardStop));
        const delivery = buildEventDelivery(l, request, { workspace, outputBase }, outputs.onResponse);
        const ignoredInputs = ignoredInputWatch(workspace); // a failure on a source the sync left out says so
        call.on('data', (response: RunResponse) => {
          streamed = true;
          agentCommandId ||= response.commandId ?? '';
          const hint = ignoredInputs.hintBefore(response);
          if (hint) delivery.relay({ standardError: hint });
          delivery.relay(response);
        });
        // grpc-js emits the status (with the trailers: a `bazel run`'s RunTarget) before 'end'.
        let trailers = new grpc.Metadata();
        call.on('status', (status: grpc.StatusObject) => (trailers = status.metadata));
        call.on('end', () => {
          done();
          try {
            const target = runTargetOf(trailers);
            if (target) {
              onRunTarget(target);
              delivery.relay({ finished: true, exitCode: 0 }); // the build part succeeded: its files and outputs come too
            }
          } catch (err) {
            return reject(new Error(`the session's agent sent a RunTarget this proxy refuses: ${(err as Error).message}`));
          }
          unlessAborted(delivery.settled(), signal).then(() => resolve(null), reject);
        });
        call.on('error', (err: grpc.ServiceError) => {
          done();
          const reason = err.details ?? err.message;
          if (err.code === grpc.status.CANCELLED && signal.aborted) resolve(null);
          else if (err.code === grpc.status.UNAVAILABLE && !streamed)
            resolve({ why: reason, agentGone: true }); // retry elsewhere
          else if (err.code === grpc.status.FAILED_PRECONDITION && !streamed) {
            syncer.markDirty(); // e.g. a restarted agent that has not seen our sync, or a drifted copy: sync again
            log(`${reason}: syncing everything`);
            resolve({ why: reason, agentGone: false });
          } else reject(new Error(`the session's agent: ${reason}`));
        });
      });
      // What follows the stream (listing, fetching, links) ends with the command on Ctrl-C too.
      if (outcome === null) await unlessAborted(outputs.finish(signal), signal);
      return outcome;
    } finally {
      clearInterval(heartbeat);
    }
  }

  return {
    run: (request, onResponse, signal) =>
      inSpan('bazel command', { 'bazel.command': commandVerb(request).slice(0, 64) }, () => runCommand(request, onResponse, signal)),

    async shutdown() {
      if (!link) return;
      const l = await link;
      await new Promise<void>((resolve, reject) => l.agent.shutdownBazel({}, (err) => (err ? reject(err) : resolve())));
    },

    close() {
      syncer.close();
      void link?.then(
        (l) => l.close(),
        () => undefined,
      );
    },
  };

  /** One command, in its span: the session (opened by the first), the sync, the run and its outputs. */
  async function runCommand(request: RunRequest, onResponse: (r: RunResponse) => void, signal: AbortSignal): Promise<void> {
    const started = performance.now();
    let exitCode: number | undefined;
    const observed = (response: RunResponse) => {
      if (response.finished) exitCode = response.exitCode ?? 0;
      onResponse(response);
    };
    const run = bazelRunOf(request, observed, { workspace, outputBase, log });
    if (run.refused) return onResponse(run.refused);
    const tell = (message: string) => {
      log(message);
      onResponse({ standardError: Buffer.from(`RBS: ${message}\n`) });
    };
    let l = await unlessAborted(session(tell), signal);
    try {
      const retry = await runOn(l, request, run.onResponse, signal, run.onRunTarget).catch(unreachable);
      if (retry !== null) {
        l = await unlessAborted(reopen(l, retry, tell), signal);
        const again = await runOn(l, request, run.onResponse, signal, run.onRunTarget);
        if (again !== null) throw new Error(`the agent of session ${l.session.sessionId} at ${l.session.agentAddress}: ${again.why}`);
      }
      await unlessAborted(run.finish(l.agent, signal), signal); // `bazel run`: the proxy, not the agent, says what the client runs
    } finally {
      if (exitCode !== undefined) reportCommand(l, request, Math.round(performance.now() - started), exitCode);
    }
  }
}

function commandVerb(request: RunRequest): string {
  return request.arg[0]?.toString('latin1') ?? '';
}

/** Tells the session's timeline (rbs describe) of a command that ended; best effort, never in the command's way. */
function reportCommand(l: SessionLink, request: RunRequest, durationMs: number, exitCode: number): void {
  l.orchestrator.heartbeat(l.session.sessionId, { verb: commandVerb(request), durationMs, exitCode }).catch(() => undefined);
}

/** Why a command never reached the agent; `agentGone`: it did not answer at all. */
interface Retry {
  why: string;
  agentGone: boolean;
}

/** A sync that cannot reach the agent means the same as a Run that cannot: try a fresh session. */
function unreachable(err: Error): Retry {
  if (err instanceof AgentUnreachableError) return { why: err.message, agentGone: true };
  throw err;
}
