/** The orchestrator's gRPC server: mTLS, caller identity from the client certificate, status mapping. */
import * as grpc from '@grpc/grpc-js';
import type { OrchestratorHandlers } from '../../gen/proto/rbs/v1/Orchestrator';
import type { Session } from '../../gen/proto/rbs/v1/Session';
import type { SessionProgress } from '../../gen/proto/rbs/v1/SessionProgress';
import type { SessionRecord } from '../../lib/domain';
import { serverKeepalive } from '../../lib/grpc/keepalive';
import { protos } from '../../lib/grpc/protos';
import { shutdownGracefully } from '../../lib/grpc/shutdown';
import { peerIdentity, serverCredentials, type TlsMaterial } from '../../lib/grpc/tls';
import { describeIdentity } from '../../lib/pki/identity';
import type { SessionView } from '../../workflows/messages';
import { RpcError, toServiceError } from './errors';
import { loginHandler, type Login } from './login';
import type { Caller, Sessions } from './sessions';

/** How often WatchSession looks at the workflow. */
const WATCH_INTERVAL_MS = 100;

export interface Orchestrator {
  address: string;
  stop(): Promise<void>;
}

function callerOf(call: Parameters<typeof peerIdentity>[0]): Caller {
  const identity = peerIdentity(call);
  if (identity.kind !== 'user') {
    throw new RpcError(grpc.status.PERMISSION_DENIED, `${describeIdentity(identity)} may not call the orchestrator: a user certificate is required`);
  }
  return { user: identity.user, operator: identity.operator };
}

export function toSession(s: SessionView | SessionRecord): Session {
  const view = 'createdAtMs' in s;
  return {
    sessionId: s.sessionId,
    workflowId: s.workflowId,
    user: s.user,
    workspace: s.workspace,
    namespace: s.namespace,
    volume: s.volume,
    phase: s.phase,
    agentAddress: s.agentAddress ?? '',
    failureReason: s.failureReason ?? '',
    createdAtMs: view ? s.createdAtMs : s.createdAt.getTime(),
    lastActivityAtMs: view ? s.lastActivityAtMs : s.lastActivityAt.getTime(),
  };
}

/** Wraps a unary handler: identity first, then the work, every failure as a precise status. */
function unary<Req, Res>(rpc: string, handle: (caller: Caller, request: Req) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    Promise.resolve()
      .then(() => handle(callerOf(call), call.request))
      .then((response) => callback(null, response))
      .catch((err) => callback(toServiceError(err, rpc)));
  };
}

function handlers(sessions: Sessions, caCertPem: string, login: Login | null): OrchestratorHandlers {
  return {
    Login: loginHandler(login),
    GetServer: unary('GetServer', async (caller, request) => ({ session: toSession(await sessions.getServer(caller, request.workspace ?? '')) })),
    Heartbeat: unary('Heartbeat', async (caller, request) => ({ phase: (await sessions.heartbeat(caller, request.sessionId ?? '')).phase })),
    ListSessions: unary('ListSessions', async (caller, request) => ({
      sessions: (await sessions.list(caller, !!request.allUsers, !!request.includeFinished)).map(toSession),
    })),
    DescribeSession: unary('DescribeSession', async (caller, request) => toSession(await sessions.describe(caller, request.sessionId ?? ''))),
    EndSession: unary('EndSession', async (caller, request) => toSession(await sessions.end(caller, request.sessionId ?? ''))),
    IssueProxyCertificate: unary('IssueProxyCertificate', async (caller, request) => ({
      certificatePem: await sessions.issueProxyCertificate(caller, request.sessionId ?? '', request.publicKeyPem ?? ''),
      caCertificatePem: caCertPem,
    })),
    WatchSession: (call) => {
      let cancelled = false;
      call.on('cancelled', () => (cancelled = true));
      (async () => {
        const caller = callerOf(call);
        const request = call.request;
        const look = () =>
          request.target === 'sessionId'
            ? sessions.viewById(caller, request.sessionId ?? '')
            : sessions.viewByWorkspace(caller, request.workspace ?? '');
        let last = '';
        while (!cancelled) {
          const view = await look();
          if (view && view.phase !== last) {
            last = view.phase;
            const progress: SessionProgress = { phase: view.phase, session: toSession(view) };
            call.write(progress);
            if (view.phase === 'READY' || view.phase === 'ENDED' || view.phase === 'FAILED') break;
          }
          await new Promise((r) => setTimeout(r, WATCH_INTERVAL_MS));
        }
        call.end();
      })().catch((err) => call.destroy(Object.assign(new Error('WatchSession failed'), toServiceError(err, 'WatchSession'))));
    },
  };
}

/** `login`: none without an OpenID provider, and Login is refused. */
export async function startOrchestrator(options: { listen: string; tls: TlsMaterial; sessions: Sessions; login?: Login }): Promise<Orchestrator> {
  // WatchSession streams of vanished clients are dropped rather than polled for hours.
  const server = new grpc.Server(serverKeepalive());
  server.addService(protos().orchestrator.rbs.v1.Orchestrator.service, handlers(options.sessions, options.tls.caCertPem, options.login ?? null));
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(options.listen, serverCredentials(options.tls, { anonymousLogin: true }), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const host = options.listen.slice(0, options.listen.lastIndexOf(':'));
  return {
    address: `${host}:${port}`,
    stop: () => shutdownGracefully(server),
  };
}
