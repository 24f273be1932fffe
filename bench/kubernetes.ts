/**
 * The Kubernetes benchmark: USERS users ask for a session at once on a real control plane (etcd,
 * kube-apiserver, controller-manager, scheduler, kwok nodes; test/kubernetes/backend-fixture), with
 * the Temporal dev server, a worker on RBS_BACKEND=kubernetes holding exactly BACKEND_RULES and the
 * orchestrator each in its own process, and this process as USERS mTLS clients. It measures
 * sessions per second to READY, time to READY, apiserver requests per session and CPU by process;
 * then ends every session as `rbs end` does, checks that nothing is left and deletes the volumes.
 * Last, on the same control plane, the same objects for USERS sessions straight from a minimal
 * client (kubernetes-ceiling.ts): the control plane's own ceiling, of which RBS's rate is a ratio.
 *
 * `cores`: 'split' confines the control plane to half the CPUs and RBS, the clients and the ceiling's
 * client to the other half, as in a cluster, where the apiserver and etcd do not share RBS's
 * machines. The fake volume provisioner stands for the CSI driver's, which runs in the cluster: it
 * runs in a process of its own (provisioner-process.ts) beside the control plane, counted on neither
 * side. 'shared' lets everything share every CPU: on 2 cores, RBS then slows the control plane it
 * drives by the CPU it takes, and its rate is at most about the control plane's CPU per session ÷
 * both together.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { releaseLabels, selector } from '../lib/compute/kubernetes/objects';
import { homePaths, loadConfig } from '../lib/config';
import { OrchestratorClient, type Session } from '../lib/grpc/orchestrator-client';
import { startChild, type Child } from '../lib/local/child';
import { freePort, waitForPort } from '../lib/local/ports';
import { startTemporalDevServer } from '../lib/local/temporal-dev-server';
import { repoRoot } from '../lib/local/tools';
import { CertificateAuthority } from '../lib/pki/ca';
import type { KubeControlPlaneOptions } from '../test/harness/kube-control-plane';
import { pidsWhere } from '../test/harness/processes';
import { waitFor } from '../test/harness/wait';
import {
  TEST_BACKEND_CONFIG,
  TEST_BACKEND_ENV,
  TEST_RELEASE,
  startKubeBackendEnvironment,
  type KubeBackendEnvironment,
} from '../test/kubernetes/backend-fixture';
import { ceilingRun } from './kubernetes-ceiling';
import { PROVISIONER_RUNNING } from './provisioner-process';
import { type CpuUse, apiRequests, requestRows, requestsPerSession, splitCores, startCpuMeter } from './kubernetes-measures';
import { percentile, report, type Row } from './stats';

const USERS = 200;
/** USERS agents request 20 cpu and 25Gi: 4 kwok nodes of 32 cpu and 256Gi hold them at 16% each. */
const NODES = 4;
/** A small agent, so that USERS of them fit (the namespace quota follows the limits). */
const AGENT_PROFILE = {
  RBS_KUBE_CPU_REQUEST: '100m',
  RBS_KUBE_MEMORY_REQUEST: '128Mi',
  RBS_KUBE_CPU_LIMIT: '200m',
  RBS_KUBE_MEMORY_LIMIT: '256Mi',
  RBS_KUBE_VOLUME_SIZE: '1Gi',
};
/** AGENT_PROFILE as the backend's config, for the ceiling's objects (the quota follows the limits). */
const CEILING_CONFIG = {
  ...TEST_BACKEND_CONFIG,
  profile: { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '200m', memory: '256Mi' }, quota: { cpu: '200m', memory: '256Mi' }, volumeSize: '1Gi' },
};
/** The processes of RBS itself, and those of the control plane (as startCpuMeter names them). */
const RBS_PROCESSES = ['worker', 'orchestrator', 'temporal'];
const CONTROL_PLANE_PROCESSES = ['kube-apiserver', 'etcd', 'kube-controller-manager', 'kube-scheduler', 'kwok'];

/** What a cluster operator may tune for a burst of sessions (the components' defaults in comments). */
const TUNING: KubeControlPlaneOptions = {
  controllerManagerRate: { qps: 200, burst: 400 }, // 20/30
  schedulerRate: { qps: 200, burst: 400 }, // 50/100
  maxRequestsInflight: 800, // 400
};
/** Bounds each phase, so that a stuck session fails the run instead of hanging it. */
const PHASE_TIMEOUT_MS = 10 * 60_000;
const VOLUME_DELETION_BATCH = 20;
const PROGRESS_EVERY_MS = 10_000;

interface Client {
  user: string;
  orchestrator: OrchestratorClient;
}

export type Cores = 'split' | 'shared';

export async function benchKubernetes(cores: Cores): Promise<void> {
  const kube = await startKubeBackendEnvironment({ nodes: NODES, ...TUNING });
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-bench-kube-'));
  const logs = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-bench-kube-logs-')); // kept for a post-mortem, as the cluster's are
  const children: Child[] = [];
  const clients: Client[] = [];
  let provisioner: Child | undefined;
  try {
    provisioner = await provisionerProcess(kube, logs);
    const address = await startRbs(home, logs, kube.workerKubeconfigPath, children, AGENT_PROFILE);
    const controlPlaneDir = path.dirname(kube.controlPlane.kubeconfigPath);
    const cpuSets =
      cores === 'split'
        ? splitCores(
            [...pidsWhere((cmdline) => cmdline.includes(controlPlaneDir)), provisioner.process.pid!],
            [process.pid, ...children.map((c) => c.process.pid!)],
          )
        : null;
    const ca = await CertificateAuthority.loadOrCreate(homePaths(home).pki);
    const clientFor = async (user: string): Promise<Client> => {
      const orchestrator = new OrchestratorClient(address, { caCertPem: ca.certPem, ...(await ca.issue({ kind: 'user', user, operator: false })) });
      clients.push({ user, orchestrator });
      return { user, orchestrator };
    };

    // The first session after start pays for warming up every process; report it apart.
    const warmup = await clientFor('warmup');
    const firstStart = performance.now();
    const first = await warmup.orchestrator.getServer(workspaceOf(warmup.user), { timeoutMs: PHASE_TIMEOUT_MS });
    const firstMs = performance.now() - firstStart;
    await warmup.orchestrator.endSession(first.sessionId);

    const users = await Promise.all(Array.from({ length: USERS }, (_, i) => clientFor(`user${i}`)));
    const cpuMeter = () => startCpuMeter(controlPlaneDir, new Map([...children, provisioner!].map((c) => [c.name, c.process.pid!])));
    const requestsAtStart = await apiRequests(kube.controlPlane.kubeConfig);
    const provisioned = await provisionAll(users, cpuMeter());
    const requestsWhenReady = await apiRequests(kube.controlPlane.kubeConfig);
    const ending = await endAll(kube, provisioned.ready, cpuMeter());
    const requests = {
      provisioning: requestsPerSession(requestsAtStart, requestsWhenReady, USERS),
      ending: requestsPerSession(requestsWhenReady, await apiRequests(kube.controlPlane.kubeConfig), USERS),
    };
    const volumes = await deleteVolumes(kube, [first, ...provisioned.ready.map((r) => r.session)]);
    const requestsBeforeCeiling = await apiRequests(kube.controlPlane.kubeConfig);
    const ceiling = await ceilingRun(kube, CEILING_CONFIG, USERS, cpuMeter(), PHASE_TIMEOUT_MS);
    const ceilingRequests = requestsPerSession(requestsBeforeCeiling, await apiRequests(kube.controlPlane.kubeConfig), USERS);
    await removeCeiling(kube, ceiling.namespaces);

    const errors = [...provisioned.errors, ...ending.errors, ...volumes.errors, ...ceiling.errors];
    if (errors.length > 0) console.error(`kubernetes bench: ${errors.length} errors, the first:\n  ${errors.slice(0, 5).join('\n  ')}`);
    const { readyMs, burstMs } = provisioned;
    report(
      `kubernetes-${cores}-cores`,
      [
        { metric: 'first session after start', value: firstMs, unit: 'ms' },
        { metric: `${USERS} users at once`, value: (USERS * 1000) / burstMs, unit: 'sessions/s', aim: '>= 10' },
        { metric: 'time to READY p50', value: readyMs.length ? percentile(readyMs, 50) : NaN, unit: 'ms' },
        { metric: 'time to READY p99', value: readyMs.length ? percentile(readyMs, 99) : NaN, unit: 'ms' },
        { metric: 'errors', value: provisioned.errors.length, unit: 'count', aim: '0' },
        { metric: `the control plane's ceiling: the same objects from a minimal client`, value: (USERS * 1000) / ceiling.burstMs, unit: 'sessions/s' },
        { metric: '  RBS ÷ ceiling', value: ceiling.burstMs / burstMs, unit: 'ratio' },
        { metric: '  ceiling: time to Ready p50', value: ceiling.readyMs.length ? percentile(ceiling.readyMs, 50) : NaN, unit: 'ms' },
        { metric: '  ceiling: errors', value: ceiling.errors.length, unit: 'count', aim: '0' },
        ...perSessionCpuRows('RBS', provisioned.cpu),
        ...perSessionCpuRows('ceiling', ceiling.cpu),
        ...requestRows('to READY', requests.provisioning, true),
        { metric: "API requests per session of the ceiling's client", value: ceilingRequests.worker, unit: 'requests' },
        ...cpuRows('provisioning', provisioned.cpu, burstMs),
        ...cpuRows('the ceiling run', ceiling.cpu, ceiling.burstMs),
        { metric: `all ${USERS} ended (EndSession)`, value: ending.endMs / 1000, unit: 's' },
        { metric: 'managed namespaces gone', value: ending.goneMs / 1000, unit: 's' },
        ...requestRows('to end', requests.ending, false),
        ...cpuRows('ending', ending.cpu, ending.goneMs),
        { metric: 'errors ending', value: ending.errors.length, unit: 'count', aim: '0' },
        { metric: 'left after end (namespaces + agent pods)', value: ending.left, unit: 'count', aim: '0' },
        { metric: 'volumes left after deleteVolume', value: volumes.left, unit: 'count', aim: '0' },
      ],
      {
        users: USERS,
        nodes: NODES,
        cores,
        cpuSets,
        agentProfile: AGENT_PROFILE,
        tuning: TUNING,
        cpus: os.cpus().length,
        logs: [logs, path.join(path.dirname(kube.controlPlane.kubeconfigPath), 'logs')],
        requestsPerSession: { ...requests, ceiling: ceilingRequests },
        cpuSeconds: { provisioning: provisioned.cpu, ending: ending.cpu, ceiling: ceiling.cpu },
        ceilingReadyMs: ceiling.readyMs.map(Math.round).sort((a, b) => a - b),
        errors: errors.slice(0, 20),
        readyMs: readyMs.map(Math.round).sort((a, b) => a - b),
      },
    );
  } finally {
    for (const { orchestrator } of clients) orchestrator.close();
    for (const child of children.reverse()) await child.stop();
    await provisioner?.stop();
    await kube.stop();
    fs.rmSync(home, { recursive: true, force: true });
  }
}

/** The fake volume provisioner moved out of this process, which holds the clients, into its own. */
async function provisionerProcess(kube: KubeBackendEnvironment, logs: string): Promise<Child> {
  await kube.provisioner.stop();
  const child = startChild('fake provisioner', process.execPath, [path.join(repoRoot(), 'dist', 'bench', 'provisioner-process.js')], {
    logFile: path.join(logs, 'fake-provisioner.log'),
    env: { ...process.env, KUBECONFIG: kube.controlPlane.kubeconfigPath },
  });
  try {
    await waitFor(() => child.logTail().includes(PROVISIONER_RUNNING) || child.exited() !== null, 30_000, 'the fake provisioner to start');
    if (child.exited()) throw new Error(`${child.exited()}:\n${child.logTail()}`);
    return child;
  } catch (err) {
    await child.stop();
    throw err;
  }
}

/** On the developer's machine: the worker never reads it. */
export const workspaceOf = (user: string) => `/home/${user}/src`;

/**
 * Temporal, the worker (with the worker's kubeconfig, TEST_BACKEND_ENV and `workerEnv`) and the orchestrator, as
 * processes; returns the orchestrator's address.
 */
export async function startRbs(home: string, logs: string, workerKubeconfig: string, children: Child[], workerEnv: Record<string, string>): Promise<string> {
  const temporal = await startTemporalDevServer({ logFile: path.join(logs, 'temporal.log') });
  children.push(temporal.child);
  const config = loadConfig({ RBS_HOME: home, RBS_TEMPORAL_ADDRESS: temporal.address, RBS_ORCHESTRATOR_LISTEN: `127.0.0.1:${await freePort()}` });
  await CertificateAuthority.loadOrCreate(homePaths(home).pki); // once, before two processes race to create it
  const env = {
    ...process.env,
    RBS_HOME: home,
    RBS_TEMPORAL_ADDRESS: temporal.address,
    RBS_TASK_QUEUE: config.temporal.taskQueue,
    RBS_ORCHESTRATOR_LISTEN: config.orchestrator.listen,
  };
  const service = (name: string, serviceEnv: NodeJS.ProcessEnv) =>
    startChild(name, process.execPath, [path.join(repoRoot(), 'dist', 'services', name, 'main.js')], {
      logFile: path.join(logs, `${name}.log`),
      env: serviceEnv,
    });
  children.push(service('worker', { ...env, ...TEST_BACKEND_ENV, ...workerEnv, KUBECONFIG: workerKubeconfig }));
  children.push(service('orchestrator', env));
  const failed = () => children.map((c) => c.exited() && `${c.exited()}:\n${c.logTail()}`).find(Boolean) || null;
  const [host, port] = config.orchestrator.listen.split(':');
  await waitForPort(host, Number(port), 60_000, failed);
  return config.orchestrator.listen;
}

/** Every user calls GetServer at once; each call's time to READY counts from the common start. */
async function provisionAll(users: Client[], cpu: () => CpuUse) {
  const start = performance.now();
  let readyCount = 0;
  const progress = setInterval(() => {
    console.error(`kubernetes bench: ${readyCount}/${users.length} READY after ${((performance.now() - start) / 1000).toFixed(0)} s`);
  }, PROGRESS_EVERY_MS);
  const outcomes = await Promise.all(
    users.map(async ({ user, orchestrator }) => {
      try {
        const session = await orchestrator.getServer(workspaceOf(user), { timeoutMs: PHASE_TIMEOUT_MS });
        if (session.phase !== 'READY') throw new Error(`session ${session.sessionId} is ${session.phase}: ${session.failureReason}`);
        readyCount++;
        return { orchestrator, session, ms: performance.now() - start };
      } catch (err) {
        return { error: `${user}: ${(err as Error).message}` };
      }
    }),
  );
  clearInterval(progress);
  return {
    burstMs: performance.now() - start,
    cpu: cpu(),
    ready: outcomes.flatMap((o) => (o.session ? [{ orchestrator: o.orchestrator, session: o.session }] : [])),
    readyMs: outcomes.flatMap((o) => (o.ms === undefined ? [] : [o.ms])),
    errors: outcomes.flatMap((o) => (o.error ? [o.error] : [])),
  };
}

/** Ends every session through the orchestrator, waits for their namespaces to go, and counts what is left. */
async function endAll(kube: KubeBackendEnvironment, ready: Array<{ orchestrator: OrchestratorClient; session: Session }>, cpu: () => CpuUse) {
  const backend = kube.backend();
  const start = performance.now();
  const outcomes = await Promise.all(
    ready.map(({ orchestrator, session }) =>
      within(orchestrator.endSession(session.sessionId), `ending session ${session.sessionId}`).then(
        (ended) => (ended.phase === 'ENDED' ? null : `session ${session.sessionId} is ${ended.phase} after EndSession`),
        (err: Error) => `ending session ${session.sessionId}: ${err.message}`,
      ),
    ),
  );
  const endMs = performance.now() - start;
  // A session is ENDED only once its teardown saw its namespace gone: one still listed here is named, to look at.
  let listed: string[] = [];
  await waitFor(
    async () => (listed = (await backend.listNamespaces()).map((ns) => ns.namespace)).length === 0,
    PHASE_TIMEOUT_MS,
    'the managed namespaces to go',
  ).catch((err: Error) => {
    throw new Error(`${err.message}: ${listed.length} still listed, the first ${listed.slice(0, 5).join(', ')}`);
  });
  const goneMs = performance.now() - start;
  const used = cpu();
  const left = (await backend.listNamespaces()).length + (await backend.listAgents()).length;
  return { endMs, goneMs, cpu: used, left, errors: outcomes.filter((e): e is string => e !== null) };
}

/**
 * Deletes the sessions' retained volumes as their expiry would, a batch at a time: expiries spread
 * over days, and all at once the worker's requests overflow its APF queues (429). Returns how many
 * PVs of rbs are left and the errors.
 */
async function deleteVolumes(kube: KubeBackendEnvironment, sessions: Session[]): Promise<{ left: number; errors: string[] }> {
  const backend = kube.backend();
  const errors: string[] = [];
  for (let i = 0; i < sessions.length; i += VOLUME_DELETION_BATCH) {
    await Promise.all(
      sessions
        .slice(i, i + VOLUME_DELETION_BATCH)
        .map(({ volume }) =>
          within(backend.deleteVolume(volume), `deleting volume ${volume}`).catch(
            (err: Error) => void errors.push(`deleting volume ${volume}: ${err.message}`),
          ),
        ),
    );
  }
  return { left: (await kube.admin.core.listPersistentVolume({ labelSelector: selector(releaseLabels(TEST_RELEASE.name)) })).items.length, errors };
}

function within<T>(work: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not done after ${PHASE_TIMEOUT_MS} ms`)), PHASE_TIMEOUT_MS);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/** The ceiling's namespaces and volumes, removed as an operator would (not measured). */
async function removeCeiling(kube: KubeBackendEnvironment, namespaces: string[]): Promise<void> {
  await Promise.all(namespaces.map((name) => kube.admin.core.deleteNamespace({ name }).catch(() => undefined)));
  await waitFor(async () => (await kube.backend().listNamespaces()).length === 0, PHASE_TIMEOUT_MS, "the ceiling's namespaces to go");
  const { items } = await kube.admin.core.listPersistentVolume();
  await Promise.all(items.map((pv) => kube.admin.core.deletePersistentVolume({ name: pv.metadata!.name! }).catch(() => undefined)));
}

/** CPU seconds per session of RBS's own processes and of the control plane's, in one phase. */
function perSessionCpuRows(phase: string, cpu: CpuUse): Row[] {
  const sum = (names: string[]) => names.reduce((total, name) => total + (cpu.byProcess[name] ?? 0), 0);
  return [
    { metric: `CPU per session, ${phase}: RBS (${RBS_PROCESSES.join(', ')})`, value: (sum(RBS_PROCESSES) * 1000) / USERS, unit: 'CPU ms' },
    { metric: `CPU per session, ${phase}: control plane`, value: (sum(CONTROL_PLANE_PROCESSES) * 1000) / USERS, unit: 'CPU ms' },
  ];
}

function cpuRows(phase: string, cpu: CpuUse, wallMs: number): Row[] {
  return [
    { metric: `CPU busy while ${phase}`, value: cpu.total / (wallMs / 1000), unit: 'cores', aim: `of ${os.cpus().length}` },
    ...Object.entries(cpu.byProcess).map(([name, seconds]): Row => ({ metric: `  ${name}`, value: seconds, unit: 'CPU s' })),
  ];
}
