/**
 * A real Kubernetes control plane on loopback for tests and benchmarks: etcd, kube-apiserver,
 * kube-controller-manager, kube-scheduler, and kwok playing the kubelet of N fake nodes, each on free
 * ports, with its state, credentials and logs in a temporary directory (the logs stay after stop()).
 *
 * Nodes have allocatable cpu 32, memory 256Gi and 1000 pods, no taints, and the labels a kubelet sets.
 * Pods scheduled onto them go Running and Ready, except that a pod with a container whose image contains
 * "unpullable" reports `waiting: {reason: ImagePullBackOff}` for it and never becomes Ready
 * (test/harness/kwok-stages.yaml). Admission runs with the apiserver's defaults (Pod Security,
 * LimitRanger, ResourceQuota, NamespaceLifecycle, ...), authorization is Node,RBAC.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CoreV1Api, Health, KubeConfig, type V1Node } from '@kubernetes/client-node';
import { startChild, type Child } from '../../lib/local/child';
import { freePort } from '../../lib/local/ports';
import { kubeTools, repoRoot, type KubeTools } from '../../lib/local/tools';
import { createKubePki, writeCredentials, writeKubeconfig, type KubePki } from './kube-credentials';
import { waitFor } from './wait';

export interface KubeControlPlane {
  server: string; // https://127.0.0.1:<port>
  kubeconfigPath: string; // admin kubeconfig (cluster-admin via system:masters)
  kubeConfig: KubeConfig; // loaded from kubeconfigPath
  caFile: string; // the CA of every certificate here, the apiserver's clients' included
  nodes: string[]; // names of the kwok nodes
  /** A kubeconfig (its path) that authenticates as `user` in `groups` with a client certificate, for RBAC checks. */
  kubeconfigFor(user: string, groups?: string[]): string;
  stop(): Promise<void>;
}

/** A client's rate limit towards the apiserver: client-go's token bucket (--kube-api-qps, --kube-api-burst). */
export interface ApiRateLimit {
  qps: number;
  burst: number;
}

/** The tuning options leave each component's own default when absent; benchmarks raise them. */
export interface KubeControlPlaneOptions {
  /** Fake nodes to create (default 3). */
  nodes?: number;
  /** Of each controller of the controller-manager (default 20/30). */
  controllerManagerRate?: ApiRateLimit;
  /** Of the scheduler (default 50/100). */
  schedulerRate?: ApiRateLimit;
  /** The apiserver's --max-requests-inflight (default 400): with priority and fairness, part of its total concurrency. */
  maxRequestsInflight?: number;
  /** How long a node's kubelet may be silent before the node is NotReady (--node-monitor-grace-period, default 50 s). */
  nodeMonitorGracePeriodSeconds?: number;
}

const MAX_NODES = 100;
/** For the whole start; typically 9-10 s on 2 busy cores. */
const START_TIMEOUT_MS = 90_000;
/** The apiserver drains its requests on SIGTERM, which takes a second or two. */
const APISERVER_STOP_GRACE_MS = 10_000;
/** Stopping everything takes about a second; this bounds it (the other components get 5 s each, SIGKILL after). */
const STOP_TIMEOUT_MS = APISERVER_STOP_GRACE_MS + 20_000;
/** kwok manages only the nodes carrying this annotation. */
const KWOK_NODE_ANNOTATION = { key: 'kwok.x-k8s.io/node', value: 'fake' };
const KWOK_STAGES = path.join(repoRoot(), 'test', 'harness', 'kwok-stages.yaml');

/** What has been started, for stopping it in reverse order: clients of the apiserver, the apiserver, etcd. */
interface Components {
  etcd?: Child;
  apiserver?: Child;
  clients: Child[];
}

/** Everything one start needs, in one place. */
interface Startup {
  tools: KubeTools;
  dir: string;
  pki: KubePki;
  server: string;
  options: KubeControlPlaneOptions;
  deadline: number;
  components: Components;
}

export async function startKubeControlPlane(options: KubeControlPlaneOptions = {}): Promise<KubeControlPlane> {
  const nodeCount = options.nodes ?? 3;
  if (!Number.isInteger(nodeCount) || nodeCount < 1 || nodeCount > MAX_NODES) {
    throw new Error(`nodes must be an integer from 1 to ${MAX_NODES}, got ${nodeCount}`);
  }
  checkTuning(options);
  const tools = kubeTools();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-kube-'));
  const components: Components = { clients: [] };
  try {
    return await start(tools, dir, nodeCount, options, components);
  } catch (err) {
    await stopComponents(components);
    removeState(dir);
    throw new Error(`Kubernetes control plane did not start (logs in ${path.join(dir, 'logs')}): ${(err as Error).message}`);
  }
}

/** One control plane per test file: started before its tests, stopped after them. */
export function useKubeControlPlane(options: KubeControlPlaneOptions = {}): () => KubeControlPlane {
  let controlPlane: KubeControlPlane | undefined;
  // Longer than a start that gives up and stops what it started, so that jest never abandons one half-way.
  beforeAll(async () => {
    controlPlane = await startKubeControlPlane(options);
  }, START_TIMEOUT_MS + STOP_TIMEOUT_MS);
  afterAll(() => controlPlane?.stop(), STOP_TIMEOUT_MS);
  return () => {
    if (!controlPlane) throw new Error('the Kubernetes control plane did not start (see beforeAll)');
    return controlPlane;
  };
}

function checkTuning({ controllerManagerRate, schedulerRate, maxRequestsInflight }: KubeControlPlaneOptions): void {
  for (const [name, rate] of Object.entries({ controllerManagerRate, schedulerRate })) {
    if (rate && !(rate.qps > 0 && Number.isInteger(rate.burst) && rate.burst >= 1)) {
      throw new Error(`${name} needs qps > 0 and an integer burst >= 1, got ${JSON.stringify(rate)}`);
    }
  }
  if (maxRequestsInflight !== undefined && !(Number.isInteger(maxRequestsInflight) && maxRequestsInflight >= 1)) {
    throw new Error(`maxRequestsInflight must be a positive integer, got ${maxRequestsInflight}`);
  }
}

async function start(tools: KubeTools, dir: string, nodeCount: number, options: KubeControlPlaneOptions, components: Components): Promise<KubeControlPlane> {
  const [etcdPort, etcdPeerPort, etcdHealthPort, apiPort, controllerManagerPort, schedulerPort] = await freePorts(6);
  const server = `https://127.0.0.1:${apiPort}`;
  const pki = createKubePki(path.join(dir, 'pki'));
  const startup: Startup = { tools, dir, pki, server, options, deadline: Date.now() + START_TIMEOUT_MS, components };

  // With a real node, whoever writes etcd runs code as root there: only holders of the CA's certificates may.
  const etcd = writeCredentials(path.join(dir, 'pki'), 'etcd', pki.etcdCredentials());
  components.etcd = run(
    startup,
    'etcd',
    tools.etcd,
    etcdArgs(path.join(dir, 'etcd'), { client: etcdPort, peer: etcdPeerPort, health: etcdHealthPort }, etcd, pki),
  );
  await waitUntil(startup, [components.etcd], 'etcd /health', () => fetch(`http://127.0.0.1:${etcdHealthPort}/health`).then((r) => r.ok));

  const etcdClient = writeCredentials(path.join(dir, 'pki'), 'apiserver-etcd-client', pki.clientCredentials('kube-apiserver-etcd-client', []));
  const kubeletClient = writeCredentials(
    path.join(dir, 'pki'),
    'apiserver-kubelet-client',
    pki.clientCredentials('kube-apiserver-kubelet-client', ['system:masters']),
  );
  const apiserver = [
    ...apiserverArgs(pki, dir, apiPort, etcdPort, options.maxRequestsInflight),
    `--etcd-cafile=${pki.files.ca}`,
    `--etcd-certfile=${etcdClient.cert}`,
    `--etcd-keyfile=${etcdClient.key}`,
    `--kubelet-client-certificate=${kubeletClient.cert}`,
    `--kubelet-client-key=${kubeletClient.key}`,
    '--kubelet-preferred-address-types=InternalIP', // a node's Hostname would be looked up in the machine's DNS
  ];
  components.apiserver = run(startup, 'kube-apiserver', tools.apiserver, apiserver);
  const kubeconfigPath = kubeconfig(startup, 'admin', 'rbs-test-admin', ['system:masters']);
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(kubeconfigPath);
  const health = new Health(kubeConfig);
  await waitUntil(startup, [components.apiserver], 'kube-apiserver /readyz', () => health.readyz({}));

  const [controllerManager, , kwok] = startClients(startup, controllerManagerPort, schedulerPort);
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const nodes = Array.from({ length: nodeCount }, (_, i) => `kwok-node-${i + 1}`);
  await Promise.all(nodes.map((name, i) => core.createNode({ body: fakeNode(name, i) })));
  // The serviceaccount controller creates it: proof that the controller-manager works.
  await waitUntil(startup, [controllerManager], 'the default ServiceAccount in namespace default', async () => {
    const accounts = await core.listNamespacedServiceAccount({ namespace: 'default', fieldSelector: 'metadata.name=default' });
    return accounts.items.length === 1;
  });
  await waitUntil(startup, [kwok], `${nodeCount} Ready nodes without taints`, async () => {
    const { items } = await core.listNode();
    return nodes.every((name) => {
      const node = items.find((n) => n.metadata?.name === name);
      return node?.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True' && !node.spec?.taints?.length;
    });
  });

  let users = 0;
  let stopped: Promise<void> | undefined;
  return {
    server,
    kubeconfigPath,
    kubeConfig,
    caFile: pki.files.ca,
    nodes,
    kubeconfigFor(user, groups = []) {
      users += 1;
      return kubeconfig(startup, `user-${users}`, user, groups);
    },
    stop() {
      stopped ??= stopComponents(components).then(() => removeState(dir));
      return stopped;
    },
  };
}

function run(startup: Startup, name: string, command: string, args: string[]): Child {
  return startChild(name, command, args, { logFile: path.join(startup.dir, 'logs', `${name}.log`), cwd: startup.dir });
}

function kubeconfig(startup: Startup, name: string, user: string, groups: string[] = []): string {
  const file = path.join(startup.dir, `${name}.kubeconfig`);
  return writeKubeconfig(file, startup.server, startup.pki.caPem, startup.pki.clientCredentials(user, groups));
}

/** The controller-manager, the scheduler and kwok, each as its own user. */
function startClients(startup: Startup, controllerManagerPort: number, schedulerPort: number): Child[] {
  const { tools, dir, pki, options } = startup;
  const component = (name: string, port: number, rate?: ApiRateLimit) => {
    const file = kubeconfig(startup, name, `system:${name}`); // the users the bootstrap RBAC policy binds
    return [
      `--kubeconfig=${file}`,
      `--authentication-kubeconfig=${file}`,
      `--authorization-kubeconfig=${file}`,
      // Callers of their own ports authenticate with tokens only: there is no front-proxy CA to look up.
      '--authentication-skip-lookup',
      '--bind-address=127.0.0.1',
      `--secure-port=${port}`,
      `--cert-dir=${path.join(dir, name)}`,
      '--leader-elect=false',
      ...(rate ? [`--kube-api-qps=${rate.qps}`, `--kube-api-burst=${rate.burst}`] : []),
    ];
  };
  const clients = [
    run(startup, 'kube-controller-manager', tools.controllerManager, [
      ...component('kube-controller-manager', controllerManagerPort, options.controllerManagerRate),
      `--service-account-private-key-file=${pki.files.serviceAccountKey}`,
      `--root-ca-file=${pki.files.ca}`,
      '--use-service-account-credentials=true',
      ...(options.nodeMonitorGracePeriodSeconds ? [`--node-monitor-grace-period=${options.nodeMonitorGracePeriodSeconds}s`] : []),
    ]),
    run(startup, 'kube-scheduler', tools.scheduler, component('kube-scheduler', schedulerPort, options.schedulerRate)),
    run(startup, 'kwok', tools.kwok, [
      `--kubeconfig=${kubeconfig(startup, 'kwok', 'kwok', ['system:masters'])}`,
      `--config=${KWOK_STAGES}`,
      '--manage-all-nodes=false',
      `--manage-nodes-with-annotation-selector=${KWOK_NODE_ANNOTATION.key}=${KWOK_NODE_ANNOTATION.value}`,
      '--cidr=10.244.0.0/16', // pod IPs, apart from the service range
    ]), // without --server-address kwok serves no kubelet API (logs, exec), which nothing here needs
  ];
  startup.components.clients.push(...clients);
  return clients;
}

async function freePorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < count) {
    const port = await freePort();
    if (!ports.includes(port)) ports.push(port);
  }
  return ports;
}

/** etcd on TLS with client certificates from the test CA on both its ports; plain HTTP only for /health and /metrics. */
function etcdArgs(dataDir: string, ports: { client: number; peer: number; health: number }, tls: { cert: string; key: string }, pki: KubePki): string[] {
  const client = `https://127.0.0.1:${ports.client}`;
  const peer = `https://127.0.0.1:${ports.peer}`;
  return [
    `--data-dir=${dataDir}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`, // not the default :2380, which another etcd may hold
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=default=${peer}`,
    `--listen-metrics-urls=http://127.0.0.1:${ports.health}`,
    `--cert-file=${tls.cert}`,
    `--key-file=${tls.key}`,
    '--client-cert-auth',
    `--trusted-ca-file=${pki.files.ca}`,
    `--peer-cert-file=${tls.cert}`,
    `--peer-key-file=${tls.key}`,
    '--peer-client-cert-auth',
    `--peer-trusted-ca-file=${pki.files.ca}`,
    '--logger=zap',
    '--log-level=warn',
  ];
}

function apiserverArgs(pki: KubePki, dir: string, port: number, etcdPort: number, maxRequestsInflight?: number): string[] {
  return [
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    `--secure-port=${port}`,
    `--etcd-servers=https://127.0.0.1:${etcdPort}`,
    '--etcd-prefix=/registry',
    `--tls-cert-file=${pki.files.servingCert}`,
    `--tls-private-key-file=${pki.files.servingKey}`,
    `--client-ca-file=${pki.files.ca}`,
    `--service-account-issuer=https://127.0.0.1:${port}`,
    `--service-account-key-file=${pki.files.serviceAccountPublicKey}`,
    `--service-account-signing-key-file=${pki.files.serviceAccountKey}`,
    '--service-cluster-ip-range=10.0.0.0/24',
    '--authorization-mode=Node,RBAC',
    // As production clusters do (their system DaemonSets need it): what keeps privileged pods out of RBS's
    // namespaces must be Pod Security and the worker's admission policy, not this flag.
    '--allow-privileged=true',
    '--endpoint-reconciler-type=none', // no kubelets: nothing would serve the kubernetes Service's endpoints
    `--cert-dir=${path.join(dir, 'kube-apiserver')}`,
    // Watch-list streams need RequestWatchProgress, which Debian's etcd 3.4 lacks. With the gate on, the
    // apiserver turns plain watches from scratch into such streams and fails them, and kwok's informers then
    // see changes only when they re-list, with backoff (up to ~30 s late); with it off clients list and watch.
    '--feature-gates=WatchList=false',
    ...(maxRequestsInflight ? [`--max-requests-inflight=${maxRequestsInflight}`] : []),
  ];
}

/** A Node as a kubelet would register it, annotated for kwok, with the resources and addresses it reports. */
function fakeNode(name: string, index: number): V1Node {
  const resources = { cpu: '32', memory: '256Gi', pods: '1000' };
  return {
    metadata: {
      name,
      annotations: { [KWOK_NODE_ANNOTATION.key]: KWOK_NODE_ANNOTATION.value },
      labels: {
        'kubernetes.io/arch': 'amd64',
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'node.kubernetes.io/instance-type': 'kwok',
        type: 'kwok',
      },
    },
    status: {
      allocatable: resources,
      capacity: resources,
      addresses: [
        { type: 'InternalIP', address: `10.1.0.${index + 1}` },
        { type: 'Hostname', address: name },
      ],
    },
  };
}

function logTail(child: Child): string {
  return `\n--- ${child.name} log (tail) ---\n${child.logTail()}`;
}

/**
 * Polls `check` until it holds; an error counts as not yet. Fails as soon as a component exits (with its
 * log), or at the start's deadline with the last error and the logs of the components `what` depends on.
 */
async function waitUntil(startup: Startup, dependsOn: Child[], what: string, check: () => Promise<boolean>): Promise<void> {
  const { etcd, apiserver, clients } = startup.components;
  const started = [etcd, apiserver, ...clients].filter((c): c is Child => c !== undefined);
  let dead: Child | undefined;
  let lastError = '';
  try {
    await waitFor(
      async () => {
        dead = started.find((c) => c.exited() !== null);
        return (
          dead !== undefined ||
          check().catch((err: Error) => {
            lastError = ` (last: ${err.message.slice(0, 300)})`;
            return false;
          })
        );
      },
      Math.max(0, startup.deadline - Date.now()),
      what,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}${lastError}${dependsOn.map(logTail).join('')}`);
  }
  if (dead) throw new Error(`${dead.exited()} while waiting for ${what}${logTail(dead)}`);
}

async function stopComponents(components: Components): Promise<void> {
  // Clients first, so that none logs the apiserver's departure as its own failure; etcd last.
  await Promise.all(components.clients.map((c) => c.stop()));
  await components.apiserver?.stop(APISERVER_STOP_GRACE_MS);
  await components.etcd?.stop();
}

/** Removes all but the logs (a few hundred KB), which stay for a post-mortem. */
function removeState(dir: string): void {
  for (const entry of fs.readdirSync(dir)) {
    if (entry !== 'logs') fs.rmSync(path.join(dir, entry), { recursive: true, force: true });
  }
}
