/**
 * The production CommandRelay: each command syncs the workspace, then runs on the session's agent,
 * with heartbeats keeping the session from going idle while it runs.
 */
import * as grpc from '@grpc/grpc-js';
import { buildEventDelivery } from './build-event-files';
import type { CommandRelay, RunRequest, RunResponse } from './command-server';
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
  const syncer = workspaceSyncer(workspace, log);

  const session = () => (link ??= openSession(workspace, log).then((l) => (log(`session ${l.session.sessionId}: agent ${l.session.agentAddress}`), l)));
  /** After the agent moved (the session was suspended and resumed), start over once. */
  const reopen = async (stale: SessionLink) => {
    if ((await link) === stale) {
      stale.close();
      link = undefined;
    }
    return session();
  };

  /**
   * Resolves null once the command ran, or with why it never reached the agent (gone, or it lost
   * our sync): then it may be retried.
   */
  async function runOn(l: SessionLink, request: RunRequest, onResponse: (r: RunResponse) => void, signal: AbortSignal): Promise<string | null> {
    const syncId = await syncer.sync(l.agent, l.session.sessionId);
    const heartbeat = setInterval(() => l.orchestrator.heartbeat(l.session.sessionId).catch(() => undefined), HEARTBEAT_MS);
    try {
      return await new Promise<string | null>((resolve, reject) => {
        let streamed = false;
        const call = l.agent.run({ request, clientWorkspace: workspace, clientOutputBase: outputBase, syncId });
        const cancel = () => call.cancel();
        signal.addEventListener('abort', cancel, { once: true });
        const delivery = buildEventDelivery(l.agent, request, { workspace, outputBase }, onResponse);
        call.on('data', (response: RunResponse) => {
          streamed = true;
          delivery.relay(response);
        });
        call.on('end', () => delivery.settled().then(() => resolve(null), reject));
        call.on('error', (err: grpc.ServiceError) => {
          signal.removeEventListener('abort', cancel);
          const reason = err.details ?? err.message;
          if (err.code === grpc.status.CANCELLED && signal.aborted) resolve(null);
          else if (err.code === grpc.status.UNAVAILABLE && !streamed) resolve(reason); // the agent is gone: retry elsewhere
          else if (err.code === grpc.status.FAILED_PRECONDITION && !streamed) {
            syncer.markDirty(); // e.g. a restarted agent that has not seen our sync, or a drifted copy: sync again
            log(`${reason}: syncing everything`);
            resolve(reason);
          } else reject(new Error(`the session's agent: ${reason}`));
        });
      });
    } finally {
      clearInterval(heartbeat);
    }
  }

  return {
    async run(request, onResponse, signal) {
      const first = await session();
      if ((await runOn(first, request, onResponse, signal).catch(unreachable)) === null) return;
      const second = await reopen(first);
      const reason = await runOn(second, request, onResponse, signal);
      if (reason !== null) throw new Error(`the agent of session ${second.session.sessionId} at ${second.session.agentAddress}: ${reason}`);
    },

    async cancel(commandId) {
      const l = await session();
      await new Promise<void>((resolve, reject) => l.agent.cancel({ commandId }, (err) => (err ? reject(err) : resolve())));
    },

    async shutdown() {
      if (!link) return;
      const l = await link;
      await new Promise<void>((resolve, reject) => l.agent.shutdownBazel({}, (err) => (err ? reject(err) : resolve())));
    },

    close() {
      syncer.close();
      void link?.then((l) => l.close(), () => undefined);
    },
  };
}

/** A sync that cannot reach the agent means the same as a Run that cannot: try a fresh session. */
function unreachable(err: Error): string {
  if (err instanceof AgentUnreachableError) return err.message;
  throw err;
}
