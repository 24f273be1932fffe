/**
 * The control plane as separate local processes, the way it deploys: Temporal requiring mTLS (with
 * its read-only Web UI), the signer (the only process that reads the CA key), a worker and the
 * orchestrator. `rbs up` runs it in the foreground; benchmarks measure it. Each process is restarted
 * if it dies (lib/local/supervisor.ts), as Kubernetes restarts the deployed ones.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { homePaths, type RbsConfig } from '../config';
import { splitHostPort } from '../host-port';
import { CertificateAuthority } from '../pki/ca';
import type { ServiceName } from '../pki/identity';
import { publishServiceTls, type ServiceTls } from '../pki/service-tls';
import { startChild } from './child';
import { freePort, waitForPort } from './ports';
import { TEMPORAL_AUTH_VARIABLES, temporalAuthEnv } from '../temporal/config';
import { startLocalTemporal } from './local-temporal';
import { type Supervised, supervise } from './supervisor';
import { repoRoot } from './tools';

export interface LocalStack {
  orchestrator: string;
  temporal: string;
  temporalUi: string | null;
  /** `temporal` CLI flags that reach this Temporal (its client certificate). */
  temporalCliFlags: string[];
  /** host:port of each service's Prometheus endpoint (GET /metrics), unless turned off. */
  metrics: { orchestrator: string; worker: string } | null;
  services: Supervised[];
  /** Resolves with why once a process of the stack keeps dying and is given up on. */
  givenUp: Promise<string>;
  stop(): Promise<void>;
}

export interface LocalStackOptions {
  ui: boolean;
  persist: boolean;
  /** Prometheus endpoints on the orchestrator and the worker (default: on); off only to measure what they cost. */
  metrics?: boolean;
  /** Restarts of dead processes, and giving up on one. */
  log(message: string): void;
}

export async function startLocalStack(config: RbsConfig, options: LocalStackOptions): Promise<LocalStack> {
  const paths = homePaths(config.home);
  fs.mkdirSync(paths.logs, { recursive: true });
  const ca = await CertificateAuthority.loadOrCreate(paths.pki); // once, before two processes race to create it
  const { host: temporalHost, port: temporalPort } = splitHostPort(config.temporal.address);
  if (temporalHost !== '127.0.0.1') throw new Error(`the local stack runs Temporal on 127.0.0.1, not ${temporalHost}`);

  const services: Supervised[] = [];
  const serviceTls: ServiceTls[] = [];
  const stop = async () => {
    for (const service of [...services].reverse()) await service.stop();
    for (const tls of serviceTls) tls.close();
  };
  try {
    const temporal = await startLocalTemporal({
      home: config.home,
      persist: options.persist,
      port: temporalPort || undefined,
      uiPort: options.ui ? Number(process.env.RBS_TEMPORAL_UI_PORT ?? temporalPort + 1000) : undefined,
      ui: options.ui,
      log: options.log,
    });
    services.push(...temporal.services);
    // Configured, or a free loopback port each: fixed defaults would collide between stacks on one machine.
    const loopback = async () => `127.0.0.1:${await freePort()}`;
    const metrics =
      options.metrics === false
        ? null
        : { orchestrator: config.metrics.orchestrator ?? (await loopback()), worker: config.metrics.worker ?? (await loopback()) };
    const env = {
      ...withoutTemporalAuth(process.env), // this stack's Temporal, not whatever the shell points at
      RBS_HOME: config.home,
      RBS_TEMPORAL_ADDRESS: temporal.address,
      ...temporalAuthEnv(temporal.auth),
      RBS_TASK_QUEUE: config.temporal.taskQueue,
      RBS_ORCHESTRATOR_LISTEN: config.orchestrator.listen,
      RBS_SIGNER_LISTEN: config.signer.listen,
      RBS_SIGNER_ADDRESS: config.signer.listen,
      RBS_SERVICE_TLS_DIR: paths.serviceTls,
      RBS_ORCHESTRATOR_METRICS_LISTEN: metrics?.orchestrator ?? '',
      RBS_WORKER_METRICS_LISTEN: metrics?.worker ?? '',
    };
    /** Starts `name`, resolving once it listens on `listen` (if it does), and supervises it. */
    const service = (name: ServiceName, listen?: string) =>
      supervise(
        name,
        async () => {
          const child = startChild(name, process.execPath, [path.join(repoRoot(), 'dist', 'services', name, 'main.js')], {
            logFile: path.join(paths.logs, `${name}.log`),
            env,
          });
          const failed = () => child.exited() && `${child.exited()}:\n${child.logTail()}`;
          const at = listen && splitHostPort(listen);
          if (at) await waitForPort(at.host, at.port, 60_000, failed).catch(async (err) => (await child.stop(), Promise.reject(err)));
          return child;
        },
        { log: options.log },
      );
    services.push(await service('signer', config.signer.listen));
    const orchestratorHost = splitHostPort(config.orchestrator.listen).host;
    for (const [name, ipAddresses] of [
      ['worker', []],
      ['orchestrator', [orchestratorHost]],
    ] as const) {
      serviceTls.push(await publishServiceTls(ca, paths.serviceTls, name, { dnsNames: ['localhost'], ipAddresses: [...ipAddresses] }));
    }
    services.push(await service('worker', metrics?.worker)); // one at a time: a failed start below must stop this one too
    services.push(await service('orchestrator', config.orchestrator.listen));
    return {
      orchestrator: config.orchestrator.listen,
      temporal: temporal.address,
      temporalUi: temporal.uiUrl,
      temporalCliFlags: temporal.cliFlags,
      metrics,
      services,
      givenUp: Promise.race(services.map((service) => service.givenUp)),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

function withoutTemporalAuth(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const names = new Set<string>(Object.values(TEMPORAL_AUTH_VARIABLES));
  return Object.fromEntries(Object.entries(env).filter(([name]) => !names.has(name)));
}
