/** A promise-shaped client for the orchestrator, used by the CLI, the proxy, tests and benchmarks. */
import * as grpc from '@grpc/grpc-js';
import type { CommandReport, Session } from '../domain';
import type { OrchestratorClient as RawClient } from '../../gen/proto/rbs/v1/Orchestrator';
import type { GetServerResponse__Output } from '../../gen/proto/rbs/v1/GetServerResponse';
import type { IssueProxyCertificateResponse__Output } from '../../gen/proto/rbs/v1/IssueProxyCertificateResponse';
import type { HeartbeatResponse__Output } from '../../gen/proto/rbs/v1/HeartbeatResponse';
import type { ListSessionsResponse__Output } from '../../gen/proto/rbs/v1/ListSessionsResponse';
import type { RevokeUserResponse__Output } from '../../gen/proto/rbs/v1/RevokeUserResponse';
import type { SessionProgress__Output } from '../../gen/proto/rbs/v1/SessionProgress';
import type { Session__Output } from '../../gen/proto/rbs/v1/Session';
import type { SessionTimeline__Output } from '../../gen/proto/rbs/v1/SessionTimeline';
import type { UnrevokeUserResponse__Output } from '../../gen/proto/rbs/v1/UnrevokeUserResponse';
import type { WatchSessionRequest } from '../../gen/proto/rbs/v1/WatchSessionRequest';
import type { ListVolumesResponse__Output } from '../../gen/proto/rbs/v1/ListVolumesResponse';
import type { Volume__Output } from '../../gen/proto/rbs/v1/Volume';
import { channelReady } from './channel-ready';
import { clientKeepalive } from './keepalive';
import { protos } from './protos';
import { channelCredentials, tlsChannelOptions, type TlsMaterial } from './tls';
import { traceContextInterceptor } from '../tracing/grpc';
import { sessionFromMessage } from './session-message';

export type { Session };
/** What GetServer answers: a session with its agent's address. */
export type ServedSession = Session & { agentAddress: string };
export type Volume = Volume__Output;
/** A session's timeline, its session as every other call returns one. */
export type SessionTimeline = Omit<SessionTimeline__Output, 'session'> & { session: Session };

/** The orchestrator could not be reached; `refused`: nothing listens at its address (it may be restarting). */
export class OrchestratorUnreachableError extends Error {
  constructor(
    why: string,
    readonly refused: boolean,
  ) {
    super(`the orchestrator: ${why}`);
    this.name = 'OrchestratorUnreachableError';
  }
}

type Invoke<Res> = (options: grpc.CallOptions, callback: grpc.requestCallback<Res>) => unknown;

/**
 * Every call has a deadline, and the channel pings a quiet connection (lib/grpc/keepalive), so an
 * orchestrator that froze or dropped off the network fails a command instead of hanging it.
 */
const CALL_DEADLINE_MS = 30_000;
/** Ending sessions waits for their teardown (agents stopped, namespaces deleted). */
const TEARDOWN_DEADLINE_MS = 10 * 60_000;
/** GetServer waits for the session to be READY, provisioning included (minutes for a new Filestore volume). */
export const GET_SERVER_DEADLINE_MS = 15 * 60_000;

/** Calls `method`; one that runs out of time says which call it was, and how long it had. */
function call<Res>(method: string, invoke: Invoke<Res>, timeoutMs = CALL_DEADLINE_MS): Promise<Res> {
  const deadline = Date.now() + timeoutMs;
  return new Promise<Res>((resolve, reject) =>
    invoke({ deadline }, (err, res) => {
      // Ours ran out (not one the orchestrator passed on from a call of its own).
      if (err?.code === grpc.status.DEADLINE_EXCEEDED && Date.now() >= deadline) {
        err.message = `the orchestrator did not answer ${method} within ${timeoutMs / 1000} s`;
      }
      return err ? reject(err) : resolve(res!);
    }),
  );
}

export class OrchestratorClient {
  private readonly raw: RawClient;

  constructor(address: string, tls: TlsMaterial, keepaliveMs?: number) {
    const credentials = channelCredentials(tls, (id) => id.kind === 'service' && id.name === 'orchestrator');
    this.raw = new (protos().orchestrator.rbs.v1.Orchestrator)(address, credentials, {
      ...tlsChannelOptions(address),
      ...clientKeepalive(keepaliveMs),
      interceptors: [traceContextInterceptor],
    }) as unknown as RawClient;
  }

  /** `unreachableAgent`: the agent address this caller could not reach (GetServerRequest.unreachable_agent). */
  async getServer(workspace: string, options: { timeoutMs?: number; unreachableAgent?: string } = {}): Promise<ServedSession> {
    const request = { workspace, unreachableAgent: options.unreachableAgent ?? '' };
    // Its deadline is long (provisioning): the connection itself gets a short one.
    await channelReady(this.raw, (why, refused) => new OrchestratorUnreachableError(why, refused));
    const res = await call<GetServerResponse__Output>('GetServer', (o, cb) => this.raw.getServer(request, o, cb), options.timeoutMs ?? GET_SERVER_DEADLINE_MS);
    if (!res.session) throw new Error('the orchestrator answered GetServer without a session');
    const session = sessionFromMessage(res.session);
    if (session.agentAddress === null)
      throw new Error(`the orchestrator answered GetServer with session ${session.sessionId} (${session.phase}) but no agent address`);
    return { ...session, agentAddress: session.agentAddress };
  }

  /** Each phase the session enters; a message this client cannot read ends the watch with why. */
  watch(target: WatchSessionRequest, onProgress: (session: Session) => void): { done: Promise<void>; cancel(): void } {
    const stream = this.raw.watchSession(target);
    let unreadable: Error | undefined;
    const done = new Promise<void>((resolve, reject) => {
      stream.on('data', (progress: SessionProgress__Output) => {
        if (unreadable) return;
        let session: Session;
        try {
          if (!progress.session) throw new Error('the orchestrator sent WatchSession progress without its session');
          session = sessionFromMessage(progress.session);
        } catch (err) {
          unreadable = err as Error;
          return void stream.cancel();
        }
        onProgress(session);
      });
      stream.on('end', () => (unreadable ? reject(unreadable) : resolve()));
      stream.on('error', (err: grpc.ServiceError) => (unreadable ? reject(unreadable) : err.code === grpc.status.CANCELLED ? resolve() : reject(err)));
    });
    return { done, cancel: () => stream.cancel() };
  }

  /** `command`: one that just ended on the session, for its timeline (rbs describe). */
  async heartbeat(sessionId: string, command?: CommandReport): Promise<string> {
    return (await call<HeartbeatResponse__Output>('Heartbeat', (o, cb) => this.raw.heartbeat({ sessionId, command }, o, cb))).phase;
  }

  async listSessions(options: { allUsers?: boolean; includeFinished?: boolean } = {}): Promise<Session[]> {
    return (await call<ListSessionsResponse__Output>('ListSessions', (o, cb) => this.raw.listSessions(options, o, cb))).sessions.map(sessionFromMessage);
  }

  async describeSession(sessionId: string): Promise<Session> {
    return sessionFromMessage(await call<Session__Output>('DescribeSession', (o, cb) => this.raw.describeSession({ sessionId }, o, cb)));
  }

  async describeSessionTimeline(sessionId: string): Promise<SessionTimeline> {
    const timeline = await call<SessionTimeline__Output>('DescribeSessionTimeline', (o, cb) => this.raw.describeSessionTimeline({ sessionId }, o, cb));
    return { ...timeline, session: sessionFromMessage(timeline.session!) };
  }

  /** Waits for the session's teardown. */
  async endSession(sessionId: string): Promise<Session> {
    return sessionFromMessage(await call<Session__Output>('EndSession', (o, cb) => this.raw.endSession({ sessionId }, o, cb), TEARDOWN_DEADLINE_MS));
  }

  async issueProxyCertificate(sessionId: string, publicKeyPem: string): Promise<{ certificatePem: string; caCertificatePem: string }> {
    return call<IssueProxyCertificateResponse__Output>('IssueProxyCertificate', (o, cb) => this.raw.issueProxyCertificate({ sessionId, publicKeyPem }, o, cb));
  }

  /** Operators only: the ids of the user's sessions it ended. */
  async revokeUser(user: string): Promise<string[]> {
    return (await call<RevokeUserResponse__Output>('RevokeUser', (o, cb) => this.raw.revokeUser({ user }, o, cb), TEARDOWN_DEADLINE_MS)).endedSessionIds;
  }

  async listVolumes(options: { allUsers?: boolean } = {}): Promise<Volume[]> {
    return (await call<ListVolumesResponse__Output>('ListVolumes', (o, cb) => this.raw.listVolumes(options, o, cb))).volumes;
  }

  /** Operators only: resolves once the volume is kept (restored if it was trashed), or no longer pinned. */
  pinVolume(volume: string, pinned: boolean): Promise<Volume> {
    return call<Volume>('PinVolume', (o, cb) => this.raw.pinVolume({ volume, pinned }, o, cb), TEARDOWN_DEADLINE_MS);
  }

  /** Operators only: false if the user was not revoked. */
  async unrevokeUser(user: string): Promise<boolean> {
    return (await call<UnrevokeUserResponse__Output>('UnrevokeUser', (o, cb) => this.raw.unrevokeUser({ user }, o, cb))).wasRevoked;
  }

  close(): void {
    this.raw.close();
  }
}
