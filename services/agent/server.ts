/**
 * The agent's gRPC server over mTLS: workspace Sync and the Bazel commands for its own session's
 * proxy only; health and Ping also for the worker, whose probes check that the agent serves. A
 * user never talks to the agent directly: the proxy stands in for them.
 */
import * as grpc from '@grpc/grpc-js';
import { bindServer } from '../../lib/grpc/bind';
import { serverKeepalive } from '../../lib/grpc/keepalive';
import { protos } from '../../lib/grpc/protos';
import { serveMetrics } from '../../lib/metrics/endpoint';
import { shutdownGracefully } from '../../lib/grpc/shutdown';
import { type AuthenticatedCall, type RotatingTls, type TlsMaterial, peerIdentity, serverCredentials } from '../../lib/grpc/tls';
import { describeIdentity } from '../../lib/pki/identity';
import * as path from 'node:path';
import { BazelServer } from './bazel-server';
import { type ReadBuildEventFileCall, type RunCall, cancelCommand, listOutputs, serveBuildEventFile, serveRun, shutdownBazel } from './commands';
import { DriftWatch } from './drift-watch';
import { LaptopCommands } from './laptop-command';
import { agentLog } from './log';
import { AgentMetrics } from './metrics';
import { CommandOutputs } from './outputs';
import { KeptRuns, type RemoteRunCall, serveRemoteRun } from './remote-run';
import { stopStrayServers } from './server-pin';
import { type SyncCall, SyncLedger, serveFetch, serveSync } from './sync';
import { AgentUsage } from './usage';
import { LEASE_FILE, VolumeLease } from './volume-lease';
import { traced } from '../../lib/tracing/grpc';

export interface AgentServerOptions {
  sessionId: string;
  /** The workspace copy on the session volume. Bazel's output base is its sibling `output_base`. */
  workspaceDir: string;
  /** Rotating: a renewed certificate is served to new connections without a restart. */
  tls: TlsMaterial | RotatingTls;
  /** host:port; port 0 picks a free one. */
  listen: string;
  /**
   * host:port of a plaintext server that answers grpc.health.v1 Check and nothing else: the
   * kubelet's gRPC readiness probe does not speak TLS. Off when unset (local agents).
   */
  healthListen?: string;
  /** How quiet a connection may be before it is pinged; unanswered, it is dropped (lib/grpc/keepalive). */
  keepaliveMs?: number;
  /** host:port of its plaintext Prometheus endpoint (GET /metrics); none when unset. */
  metricsListen?: string;
  /**
   * Starts Bazel's server at once on a copy that is a workspace already (a replaced or resumed
   * agent's), so that its JVM starts while the proxy syncs, not after; `log` hears how it went.
   */
  warmBazel?: { log(message: string): void };
  /**
   * The volume lease (volume-lease.ts): this agent's generation, stamped by the control plane when
   * it started the agent (default 0: an agent without one only takes back a lease without one), its
   * lease, and a signal that ends the wait for a previous holder.
   */
  lease?: { generation?: number; leaseMs?: number; signal?: AbortSignal };
}

export interface AgentServer {
  /** host:port actually bound. */
  address: string;
  /** host:port of the plaintext health server, if there is one. */
  healthAddress?: string;
  /** host:port of the Prometheus endpoint, if there is one. */
  metricsAddress?: string;
  /** Which workspace sync the agent's copy matches. */
  syncs: SyncLedger;
  /** Changes to the copy outside a sync. */
  drift: DriftWatch;
  /** Calls of authorized peers: what keeps the agent from looking abandoned. */
  usage: AgentUsage;
  /**
   * Resolves with why, if another agent took the volume over or the lease lapsed. By then this
   * agent has killed its Bazel server and stopped serving: it must exit, without touching the volume.
   */
  lost: Promise<string>;
  /** Stops serving and the Bazel server, then releases the volume. */
  stop(): Promise<void>;
}

/** A Bazel server whose agent died without stopping it goes away by itself after this. */
const BAZEL_MAX_IDLE_SECS = 3 * 60 * 60;

/** Health answers for the whole server ('') and for the one service it hosts, per the health spec. */
const HEALTH_SERVICES = new Set(['', 'rbs.v1.Agent']);

export async function startAgentServer(options: AgentServerOptions): Promise<AgentServer> {
  // Before anything on the volume is touched.
  const lease = await VolumeLease.take({
    file: path.join(path.dirname(options.workspaceDir), LEASE_FILE),
    generation: options.lease?.generation ?? 0,
    leaseMs: options.lease?.leaseMs,
    signal: options.lease?.signal,
    log: (message) => agentLog().warn(message),
  });
  try {
    return await serveWithLease(options, lease);
  } catch (err) {
    await lease.release();
    throw err;
  }
}

async function serveWithLease(options: AgentServerOptions, lease: VolumeLease): Promise<AgentServer> {
  const { sessionId, workspaceDir } = options;
  const startedAtMs = Date.now();
  const { health, agent } = protos();
  const syncs = new SyncLedger();
  const runs = new KeptRuns();
  // On the volume beside the workspace, so Bazel's caches survive agent restarts and suspensions.
  const volumeDir = path.dirname(workspaceDir);
  const outputBase = path.join(volumeDir, 'output_base');
  const drift = new DriftWatch(workspaceDir, { drifted: (why) => syncs.invalidate(why) });
  const bazel = new BazelServer({ workspaceDir, outputBase, maxIdleSecs: BAZEL_MAX_IDLE_SECS });
  const laptop = new LaptopCommands({ workspaceDir, outputBase, volumeDir });
  const outputs = new CommandOutputs({ workspaceDir, outputBase, eventsDir: path.join(volumeDir, 'build-events') });
  await outputs.prepareEventsDir();
  await stopStrayServers(outputBase); // before anyone can reach this agent
  if (options.warmBazel) void warm(bazel, options.warmBazel.log);
  const usage = new AgentUsage();
  const metrics = new AgentMetrics();

  /** Wraps a unary handler so that it runs only for an authorized peer (`callers`, see authorize). */
  function guarded<Req, Res>(handle: (request: Req) => Res | Promise<Res>, callers: Callers): grpc.handleUnaryCall<Req, Res> {
    return (call, callback) => {
      let end: () => void = () => undefined;
      Promise.resolve()
        .then(() => {
          authorize(call, sessionId, callers);
          end = usage.begin();
          return handle(call.request);
        })
        .then(
          (response) => callback(null, response),
          (err) => callback(err as grpc.ServiceError),
        )
        .finally(() => end());
    };
  }

  /** Wraps a streaming handler so that it runs only for an authorized peer. */
  function guardedStream<Call extends AuthenticatedCall & NodeJS.EventEmitter & { getPath(): string }>(handle: (call: Call) => void) {
    return (call: Call) => {
      try {
        authorize(call, sessionId, 'proxy');
      } catch (err) {
        call.emit('error', err); // grpc-js ends a streaming call with an emitted error's status
        return;
      }
      const end = usage.begin();
      for (const event of ['finish', 'cancelled', 'close']) call.once(event, end);
      handle(call);
    };
  }

  // A vanished proxy's Run must be cancelled, or its command would hold the Bazel server's lock.
  const server = new grpc.Server(serverKeepalive(options.keepaliveMs));
  server.addService(health.grpc.health.v1.Health.service, traced('grpc.health.v1.Health', { Check: guarded(checkHealth, 'proxy or probe') }));
  server.addService(
    agent.rbs.v1.Agent.service,
    traced('rbs.v1.Agent', {
      Ping: guarded(() => ({ sessionId, workspaceDir, startedAtMs }), 'proxy or probe'),
      Sync: guardedStream((call: SyncCall) => serveSync(call, workspaceDir, syncs, metrics.transfer('sync'), drift)),
      Run: guardedStream((call: RunCall) => void serveRun(call, { bazel, syncs, laptop, outputs, runs, metrics, drift })),
      ReadBuildEventFile: guardedStream((call: ReadBuildEventFileCall) => serveBuildEventFile(call, laptop)),
      ListOutputs: guarded((request: { commandId: string }) => listOutputs(outputs, request.commandId), 'proxy'),
      Fetch: guardedStream((call: SyncCall) => serveFetch(call, outputBase, metrics.transfer('fetch'))),
      RunRemotely: guardedStream((call: RemoteRunCall) => serveRemoteRun(call, runs)),
      Cancel: guarded((request: { commandId: string }) => cancelCommand(bazel, request.commandId), 'proxy'),
      ShutdownBazel: guarded(() => shutdownBazel(bazel), 'proxy'),
    }),
  );

  const address = await bindServer(server, options.listen, serverCredentials(options.tls));
  let healthServer: grpc.Server | undefined;
  let healthAddress: string | undefined;
  if (options.healthListen) {
    healthServer = new grpc.Server();
    healthServer.addService(health.grpc.health.v1.Health.service, {
      Check: (call: grpc.ServerUnaryCall<{ service: string }, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        try {
          callback(null, checkHealth(call.request));
        } catch (err) {
          callback(err as grpc.ServiceError);
        }
      },
    });
    healthAddress = await bindServer(healthServer, options.healthListen, grpc.ServerCredentials.createInsecure());
  }
  const onError = (err: Error) => agentLog().warn({ err }, 'serving metrics');
  const metricsEndpoint = options.metricsListen ? await serveMetrics(options.metricsListen, metrics.registry, { onError }) : undefined;

  // Nothing graceful: another agent may be building on the volume already.
  let fenced = false;
  const lost = lease.lost.then((why) => {
    fenced = true;
    const killed = bazel.killNow();
    server.forceShutdown(); // cancels every call: their rsyncs and commands end with them
    healthServer?.forceShutdown(); // not ready any more
    agentLog().error(`${why}: stopped serving${killed ? `, killed Bazel server pid ${killed}` : ''}`);
    return why;
  });

  return {
    address,
    healthAddress,
    metricsAddress: metricsEndpoint?.address,
    syncs,
    drift,
    usage,
    lost,
    async stop() {
      // Both stop taking calls at once (no new client is sent here while the agent stops), then
      // share one grace period for those in flight.
      await Promise.all([healthServer && shutdownGracefully(healthServer), shutdownGracefully(server), metricsEndpoint?.close()]);
      // A suspended or ended session keeps no JVM running; its caches stay on the volume.
      if (!fenced) await bazel.shutdown();
      bazel.close();
      await drift.close();
      await lease.release();
    },
  };
}

/** Starts the server ahead of the first command; a failure is only told: that command starts it again, and says why. */
async function warm(bazel: BazelServer, log: (message: string) => void): Promise<void> {
  if (!(await bazel.hasWorkspace())) return;
  const started = performance.now();
  await bazel.ensureStarted().then(
    () => log(`Bazel server started ahead of the first command in ${Math.round(performance.now() - started)} ms`),
    (err: Error) => log(`could not start the Bazel server ahead of the first command, which will try again: ${err.message}`),
  );
}

/** SERVING whenever it answers: an agent that could not serve would not have started its servers. */
function checkHealth(request: { service: string }): { status: 'SERVING' } {
  if (!HEALTH_SERVICES.has(request.service)) {
    throw { code: grpc.status.NOT_FOUND, details: `the agent serves no health for service '${request.service}'` };
  }
  return { status: 'SERVING' };
}

/**
 * Who may call an RPC: this session's proxy always; the worker only what its probes need ('proxy
 * or probe': health and Ping, which change nothing). Sync rewrites the workspace and Run runs the
 * build, so nobody else, no other service and no other session's proxy, may call those.
 */
type Callers = 'proxy' | 'proxy or probe';
const CALLERS: Record<Callers, string> = { proxy: "the session's proxy", 'proxy or probe': "the session's proxy and the worker" };

function authorize(call: AuthenticatedCall & { getPath(): string }, sessionId: string, callers: Callers): void {
  const identity = peerIdentity(call);
  if (identity.kind === 'proxy' && identity.sessionId === sessionId) return;
  if (callers === 'proxy or probe' && identity.kind === 'service' && identity.name === 'worker') return;
  throw {
    code: grpc.status.PERMISSION_DENIED,
    details: `${describeIdentity(identity)} may not call the agent of session ${sessionId}: ${call.getPath()} is for ${CALLERS[callers]} only`,
  };
}
