/** The orchestrator's gRPC server: mTLS, caller identity from the client certificate, status mapping. */
import * as grpc from '@grpc/grpc-js';
import type { OrchestratorHandlers } from '../../gen/proto/rbs/v1/Orchestrator';
import type { SessionProgress } from '../../gen/proto/rbs/v1/SessionProgress';
import type { VolumeRecord } from '../../lib/domain';
import type { Volume } from '../../gen/proto/rbs/v1/Volume';
import { bindServer } from '../../lib/grpc/bind';
import { serverKeepalive } from '../../lib/grpc/keepalive';
import { protos } from '../../lib/grpc/protos';
import { shutdownGracefully } from '../../lib/grpc/shutdown';
import { peerIdentity, serverCredentials, type AuthenticatedCall, type RotatingTls } from '../../lib/grpc/tls';
import { describeIdentity } from '../../lib/pki/identity';
import { validateCommandReport } from '../../lib/validate';
import { type Failed, answerFailures } from './audit';
import { RpcError } from './errors';
import type { OrchestratorMetrics } from './metrics';
import type { Logger } from '../../lib/log';
import type { Limits } from './limits';
import type { Revocations } from './revocation';
import { loginHandler, type Login } from './login';
import type { Caller, Sessions } from './sessions';
import type { Volumes } from './volumes';
import { traced } from '../../lib/tracing/grpc';
import { sessionMessage } from '../../lib/grpc/session-message';

/** How often WatchSession looks at the store: soon after a change, backing off while none comes. */
const WATCH_INTERVAL_MS = { min: 100, max: 1000 };
/** How long WatchSession trusts an unchanged store before it asks the workflow all the same. */
const WATCH_QUERY_MAX_MS = 30_000;

/** The caller, once it may call at all: a user certificate, not revoked. */
type Admit = (call: AuthenticatedCall) => Promise<Caller>;

export interface Orchestrator {
  address: string;
  /** host:port of its Prometheus endpoint, if it serves one. */
  metricsAddress?: string | null;
  stop(): Promise<void>;
}

function callerOf(call: Parameters<typeof peerIdentity>[0]): Caller {
  const identity = peerIdentity(call);
  if (identity.kind !== 'user') {
    throw new RpcError(grpc.status.PERMISSION_DENIED, `${describeIdentity(identity)} may not call the orchestrator: a user certificate is required`);
  }
  return { user: identity.user, operator: identity.operator };
}

export function toVolume(v: Pick<VolumeRecord, 'volume' | 'user' | 'workspace' | 'state' | 'pinned' | 'lastUsedAtMs' | 'removeAtMs' | 'sizeBytes'>): Volume {
  return {
    volume: v.volume,
    user: v.user,
    workspace: v.workspace,
    state: v.state,
    pinned: v.pinned,
    lastUsedAtMs: v.lastUsedAtMs,
    removeAtMs: v.removeAtMs ?? 0,
    sizeBytes: v.sizeBytes ?? -1,
  };
}

/** Wraps unary handlers: admission first, then the work, every failure as a precise status, counted. */
function unaryWith(admit: Admit, failed: Failed) {
  return <Req, Res>(rpc: string, handle: (caller: Caller, request: Req) => Promise<Res>): grpc.handleUnaryCall<Req, Res> =>
    (call, callback) => {
      admit(call)
        .then((caller) => handle(caller, call.request))
        .then((response) => callback(null, response))
        .catch((err) => callback(failed(err, rpc, call)));
    };
}

/**
 * Like unaryWith, for a handler whose first steps are reads that need no admission (GetServer's
 * look at the store and at Temporal): it starts at once, with the caller its certificate names and
 * `admitted`, which it awaits before it writes anything, and which the answer waits for too. A
 * refusal wins over any other failure meanwhile, so a revoked caller is told so (and audited as
 * refused), never something else. `limit` runs first, synchronously: a caller over its rate costs
 * no read but its revocation's.
 */
function earlyUnaryWith(limit: (caller: Caller) => void, admit: (caller: Caller) => Promise<void>, failed: Failed) {
  return <Req, Res>(rpc: string, handle: (caller: Caller, request: Req, admitted: Promise<void>) => Promise<Res>): grpc.handleUnaryCall<Req, Res> =>
    (call, callback) => {
      let caller: Caller;
      try {
        caller = callerOf(call);
      } catch (err) {
        return callback(failed(err, rpc, call));
      }
      try {
        limit(caller);
      } catch (err) {
        // A revoked caller is told that, rather than its rate.
        const answer = (refusal: unknown) => callback(failed(refusal, rpc, call));
        return void admit(caller).then(() => answer(err), answer);
      }
      const admitted = admit(caller);
      admitted.catch(() => undefined); // awaited by the handler, and below
      const refusalOr = (err: unknown) =>
        admitted.then(
          () => err,
          (refusal: unknown) => refusal,
        );
      Promise.all([Promise.resolve().then(() => handle(caller, call.request, admitted)), admitted])
        .then(([response]) => callback(null, response))
        .catch(async (err: unknown) => callback(failed(await refusalOr(err), rpc, call)));
    };
}

export interface OrchestratorServices {
  sessions: Sessions;
  limits: Limits;
  revocations: Revocations;
  volumes: Volumes;
  /** None without an OpenID provider: Login is then refused. */
  login?: Login;
  metrics: OrchestratorMetrics;
  log: Logger;
}

function handlers({ sessions, volumes, limits, revocations, login, metrics, log }: OrchestratorServices): OrchestratorHandlers {
  const admit: Admit = async (call) => {
    const caller = callerOf(call);
    await revocations.admit(caller);
    return caller;
  };
  const failed = answerFailures(log, metrics);
  const unary = unaryWith(admit, failed);
  const early = earlyUnaryWith(
    (caller) => limits.countGetServer(caller.user),
    (caller) => revocations.admit(caller),
    failed,
  );
  return {
    Login: loginHandler(login ?? null, failed),
    GetServer: early('GetServer', async (caller, request, admitted) => ({
      session: sessionMessage(await sessions.getServer(caller, request.workspace ?? '', request.unreachableAgent || undefined, admitted)),
    })),
    Heartbeat: unary('Heartbeat', async (caller, request) => {
      const command = request.command ? validateCommandReport({ ...request.command, durationMs: Number(request.command.durationMs) }) : undefined;
      return { phase: (await sessions.heartbeat(caller, request.sessionId ?? '', command)).phase };
    }),
    ListSessions: unary('ListSessions', async (caller, request) => ({
      sessions: (await sessions.list(caller, !!request.allUsers, !!request.includeFinished)).map(sessionMessage),
    })),
    DescribeSession: unary('DescribeSession', async (caller, request) => sessionMessage(await sessions.describe(caller, request.sessionId ?? ''))),
    DescribeSessionTimeline: unary('DescribeSessionTimeline', async (caller, request) => {
      const { record, timeline, earlierRunsOmitted } = await sessions.timeline(caller, request.sessionId ?? '');
      return {
        session: sessionMessage(record),
        startedAtMs: timeline.startedMs,
        phases: timeline.phases.map((phase) => ({ ...phase, lastWakeMs: phase.lastWakeMs ?? 0 })),
        steps: timeline.steps,
        endReason: timeline.endReason,
        earlierRunsOmitted,
        commands: timeline.commands,
        stepsOmitted: timeline.stepsOmitted,
      };
    }),
    EndSession: unary('EndSession', async (caller, request) => sessionMessage(await sessions.end(caller, request.sessionId ?? ''))),
    IssueProxyCertificate: unary('IssueProxyCertificate', (caller, request) =>
      sessions.issueProxyCertificate(caller, request.sessionId ?? '', request.publicKeyPem ?? ''),
    ),
    RevokeUser: unary('RevokeUser', async (caller, request) => ({ endedSessionIds: await revocations.revoke(caller, request.user ?? '') })),
    ListVolumes: unary('ListVolumes', async (caller, request) => ({ volumes: (await volumes.list(caller, !!request.allUsers)).map(toVolume) })),
    PinVolume: unary('PinVolume', async (caller, request) => {
      const view = await volumes.pin(caller, request.volume ?? '', !!request.pinned);
      return toVolume(view);
    }),
    UnrevokeUser: unary('UnrevokeUser', async (caller, request) => ({ wasRevoked: await revocations.unrevoke(caller, request.user ?? '') })),
    WatchSession: (call) => {
      let cancelled = false;
      let release = () => {};
      call.on('cancelled', () => {
        cancelled = true;
        release();
      });
      (async () => {
        const caller = await admit(call);
        release = limits.openWatch(caller.user);
        const request = call.request;
        const byId = request.target === 'sessionId';
        const look = () => (byId ? sessions.viewById(caller, request.sessionId ?? '') : sessions.viewByWorkspace(caller, request.workspace ?? ''));
        const target = byId ? { sessionId: request.sessionId ?? '' } : { workspace: request.workspace ?? '' };
        let last = '';
        let interval = WATCH_INTERVAL_MS.min;
        // The workflow is asked only when the store shows a change, and at least every
        // WATCH_QUERY_MAX_MS; until it agrees with the store's newest phase, it is asked again.
        let seen: string | undefined;
        let askedAt = 0;
        while (!cancelled) {
          const store = await sessions.progressMark(caller, target);
          if (store.mark === seen && Date.now() - askedAt < WATCH_QUERY_MAX_MS) {
            interval = Math.min(WATCH_INTERVAL_MS.max, interval * 2);
            await new Promise((r) => setTimeout(r, interval));
            continue;
          }
          askedAt = Date.now();
          const view = await look();
          if ((view?.phase ?? null) === store.phase || store.phase === null) seen = store.mark;
          if (view && view.phase !== last) {
            last = view.phase;
            interval = WATCH_INTERVAL_MS.min;
            const progress: SessionProgress = { phase: view.phase, session: sessionMessage(view) };
            call.write(progress);
            if (view.phase === 'READY' || view.phase === 'ENDED' || view.phase === 'FAILED') break;
          } else {
            interval = Math.min(WATCH_INTERVAL_MS.max, interval * 2);
          }
          await new Promise((r) => setTimeout(r, interval));
        }
        call.end();
      })()
        // An 'error' event is how grpc-js sends a stream's status; destroy() would send none.
        .catch((err) => call.emit('error', Object.assign(new Error('WatchSession failed'), failed(err, 'WatchSession', call))))
        .finally(() => release());
    },
  };
}

export async function startOrchestrator(options: { listen: string; tls: RotatingTls } & OrchestratorServices): Promise<Orchestrator> {
  // WatchSession streams of vanished clients are dropped rather than polled for hours.
  const server = new grpc.Server(serverKeepalive());
  server.addService(protos().orchestrator.rbs.v1.Orchestrator.service, traced('rbs.v1.Orchestrator', handlers(options)));
  const address = await bindServer(server, options.listen, serverCredentials(options.tls, { anonymousLogin: true }));
  return {
    address,
    stop: () => shutdownGracefully(server),
  };
}
