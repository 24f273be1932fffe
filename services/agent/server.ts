/**
 * The agent's gRPC server: health and Ping over mTLS, callable only by its own session's proxy and
 * by the control plane. A user never talks to the agent directly: the proxy stands in for them.
 */
import * as grpc from '@grpc/grpc-js';
import { protos } from '../../lib/grpc/protos';
import { type TlsMaterial, peerIdentity, serverCredentials } from '../../lib/grpc/tls';
import { describeIdentity } from '../../lib/pki/identity';

export interface AgentServerOptions {
  sessionId: string;
  workspaceDir: string;
  tls: TlsMaterial;
  /** host:port; port 0 picks a free one. */
  listen: string;
}

export interface AgentServer {
  /** host:port actually bound. */
  address: string;
  stop(): Promise<void>;
}

/** In-flight calls get this long to finish on stop before connections are cut. */
const SHUTDOWN_GRACE_MS = 2000;

/** Health answers for the whole server ('') and for the one service it hosts, per the health spec. */
const HEALTH_SERVICES = new Set(['', 'rbs.v1.Agent']);

export async function startAgentServer(options: AgentServerOptions): Promise<AgentServer> {
  const { sessionId, workspaceDir } = options;
  const startedAtMs = Date.now();
  const { health, agent } = protos();

  /** Wraps a unary handler so that it runs only for an authorized peer. */
  function guarded<Req, Res>(handle: (request: Req) => Res): grpc.handleUnaryCall<Req, Res> {
    return (call, callback) => {
      try {
        authorize(call, sessionId);
        callback(null, handle(call.request));
      } catch (err) {
        callback(err as grpc.ServiceError);
      }
    };
  }

  const server = new grpc.Server();
  server.addService(health.grpc.health.v1.Health.service, {
    Check: guarded((request: { service: string }) => {
      if (!HEALTH_SERVICES.has(request.service)) {
        throw { code: grpc.status.NOT_FOUND, details: `the agent serves no health for service '${request.service}'` };
      }
      return { status: 'SERVING' as const };
    }),
  });
  server.addService(agent.rbs.v1.Agent.service, {
    Ping: guarded(() => ({ sessionId, workspaceDir, startedAtMs })),
  });

  const host = listenHost(options.listen);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(options.listen, serverCredentials(options.tls), (err, bound) =>
      err ? reject(new Error(`agent cannot listen on ${options.listen}: ${err.message}`)) : resolve(bound),
    ),
  );

  return {
    address: `${host}:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, SHUTDOWN_GRACE_MS);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}

/** Only this session's proxy and the control-plane services may call; users and agents may not. */
function authorize(call: grpc.ServerUnaryCall<unknown, unknown>, sessionId: string): void {
  const identity = peerIdentity(call);
  if (identity.kind === 'service') return;
  if (identity.kind === 'proxy' && identity.sessionId === sessionId) return;
  throw {
    code: grpc.status.PERMISSION_DENIED,
    details: `${describeIdentity(identity)} may not call the agent of session ${sessionId}`,
  };
}

/** The host part of host:port (an IPv6 host keeps its brackets, so host:port stays dialable). */
function listenHost(listen: string): string {
  const colon = listen.lastIndexOf(':');
  if (colon <= 0) throw new Error(`listen address '${listen}' is not host:port`);
  return listen.slice(0, colon);
}
