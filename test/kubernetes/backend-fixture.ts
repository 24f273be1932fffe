/**
 * What the Kubernetes backend's tests and benchmark share: a real control plane
 * (test/harness/kube-control-plane), the fake volume provisioner in place of the Filestore CSI driver,
 * and the worker's identity as the chart makes it: exactly BACKEND_RULES, confined by the chart's admission
 * policy (worker-identity.ts), so every test also proves that those suffice and that the policy lets the
 * backend do its work.
 */
import { DEFAULT_AGENT_LEASE_MS } from '../../lib/agent-lease';
import { CoreV1Api, KubeConfig, KubernetesObjectApi, NetworkingV1Api, type KubernetesObject, type V1Namespace } from '@kubernetes/client-node';
import { MERGE_PATCH } from '../../lib/compute/kubernetes/apply';
import { KubernetesBackend } from '../../lib/compute/kubernetes/backend';
import { DEFAULT_AGENT_ADDRESS_TEMPLATE, type KubernetesBackendConfig } from '../../lib/compute/kubernetes/config';
import type { WorkspaceStorageHooks } from '../../lib/compute/kubernetes/volumes';
import { FAKE_STORAGE_CLASS, type FakeVolumeProvisioner, startFakeVolumeProvisioner } from '../fakes/fake-volume-provisioner';
import { installGatewayApi } from '../harness/gateway-api';
import { type KubeControlPlane, type KubeControlPlaneOptions, startKubeControlPlane } from '../harness/kube-control-plane';
import { AGENT_TEST_IMAGE, REAL_NODE_GRACE_SECONDS, REAL_NODE_START_TIMEOUT_MS, type RealNode, startRealNode } from '../harness/kube-node';
import { waitFor } from '../harness/wait';
import { type ChartRelease, renderRelease } from './chart-render';
import { installWorkerIdentity, type WorkerIdentity } from './worker-identity';

/** The release the tests' worker belongs to, as helm would install it. */
export const TEST_RELEASE: ChartRelease = { name: 'rbs', namespace: 'rbs-system' };

export const TEST_BACKEND_CONFIG: KubernetesBackendConfig = {
  release: TEST_RELEASE.name,
  agentImage: 'registry.rbs.test/rbs-agent:test',
  agentLeaseMs: DEFAULT_AGENT_LEASE_MS,
  storageClass: FAKE_STORAGE_CLASS,
  profile: {
    requests: { cpu: '500m', memory: '1Gi' },
    limits: { cpu: '1', memory: '2Gi' },
    quota: { cpu: '1', memory: '2Gi' },
    volumeSize: '10Gi',
  },
  ingress: { namespaceLabels: { 'kubernetes.io/metadata.name': TEST_RELEASE.namespace }, cidrs: ['10.9.0.0/16'] },
  dns: { namespaceLabels: { 'kubernetes.io/metadata.name': 'kube-system' }, podLabels: { 'k8s-app': 'kube-dns' }, cidrs: [] },
  agentAddressTemplate: DEFAULT_AGENT_ADDRESS_TEMPLATE,
};

/** The chart's values for a route from laptops (helm/rbs agents.gateway), and what the worker then gets (configmap.yaml). */
export const TEST_GATEWAY = {
  values: { 'agents.gateway.enabled': 'true', 'agents.gateway.domain': 'agents.rbs.test', 'agents.gateway.className': 'rbs-test' },
  config: {
    gateway: { namespace: TEST_RELEASE.namespace, name: `${TEST_RELEASE.name}-agents` },
    agentAddressTemplate: '{namespace}.agents.rbs.test:443',
  } satisfies Partial<KubernetesBackendConfig>,
};

/** The chart's gateway.yaml with TEST_GATEWAY's values: the Gateway, and the admission policy on routes through it. */
export function testGatewayObjects(): KubernetesObject[] {
  return renderRelease(TEST_RELEASE, ['templates/gateway.yaml'], TEST_GATEWAY.values);
}

/** Creates `objects` (testGatewayObjects) as the release's install would: the Gateway in the release's namespace. */
export async function installTestGateway(controlPlane: KubeControlPlane, objects: KubernetesObject[]): Promise<void> {
  await controlPlane.kubeConfig
    .makeApiClient(CoreV1Api)
    .createNamespace({ body: { metadata: { name: TEST_RELEASE.namespace } } })
    .catch(() => undefined); // the worker's identity may have made it
  const admin = KubernetesObjectApi.makeApiClient(controlPlane.kubeConfig);
  for (const object of objects)
    await admin.create({ ...object, metadata: { ...object.metadata, namespace: object.kind === 'Gateway' ? TEST_RELEASE.namespace : undefined } });
}

/** Limits above the namespace's quota: quota admission refuses the agent pod. */
export const OVER_QUOTA = { ...TEST_BACKEND_CONFIG.profile, quota: { cpu: '500m', memory: '2Gi' } };

/** The same settings as RBS_* variables, for a worker process (lib/config.ts parses them). */
export const TEST_BACKEND_ENV = {
  RBS_BACKEND: 'kubernetes',
  RBS_KUBE_RELEASE: TEST_RELEASE.name,
  RBS_KUBE_AGENT_IMAGE: TEST_BACKEND_CONFIG.agentImage,
  RBS_KUBE_STORAGE_CLASS: FAKE_STORAGE_CLASS,
  RBS_KUBE_CPU_REQUEST: '500m',
  RBS_KUBE_CPU_LIMIT: '1',
  RBS_KUBE_MEMORY_REQUEST: '1Gi',
  RBS_KUBE_MEMORY_LIMIT: '2Gi',
  RBS_KUBE_VOLUME_SIZE: '10Gi',
  RBS_KUBE_INGRESS_NAMESPACE_LABELS: `kubernetes.io/metadata.name=${TEST_RELEASE.namespace}`,
  RBS_KUBE_INGRESS_CIDRS: '10.9.0.0/16',
};

export interface KubeBackendFixture {
  controlPlane: KubeControlPlane;
  /** With `realNode`: the node agent pods run on (the kwok nodes are cordoned). */
  realNode?: RealNode;
  provisioner: FakeVolumeProvisioner;
  /** The worker's kubeconfig: BACKEND_RULES and nothing else, confined by the chart's admission policy. */
  workerKubeconfigPath: string;
  /** The worker of each release the environment was started with (TEST_RELEASE first). */
  workers: WorkerIdentity[];
  /** A backend as the worker of `config.release` (default TEST_RELEASE) builds it, with `config` over the test defaults. */
  backend(config?: Partial<KubernetesBackendConfig>, workspaceStorage?: WorkspaceStorageHooks): KubernetesBackend;
  /** Cluster-admin clients, for looking at (and tampering with) what the backend made. */
  admin: { core: CoreV1Api; networking: NetworkingV1Api };
  /** The namespace, or null once it is gone. */
  namespace(name: string): Promise<V1Namespace | null>;
  /** Waits until the namespace is gone (the namespace controller takes some seconds). */
  namespaceGone(name: string): Promise<void>;
}

/** A started fixture, to stop when done: the jest hooks below, or a benchmark, own it. */
export interface KubeBackendEnvironment extends KubeBackendFixture {
  stop(): Promise<void>;
}

/**
 * Starts the control plane (with `options`), the fake volume provisioner and the worker of each of `releases`
 * (TEST_RELEASE unless given): its ServiceAccount identity, ClusterRole and admission policy from the chart. With
 * `gateway`, the cluster has the Gateway API CRDs, the chart is rendered with TEST_GATEWAY, and backends route by it.
 */
export async function startKubeBackendEnvironment(
  options: KubeControlPlaneOptions = {},
  releases: ChartRelease[] = [TEST_RELEASE],
  { gateway = false, realNode: withRealNode = false } = {},
): Promise<KubeBackendEnvironment> {
  const controlPlane = await startKubeControlPlane(withRealNode ? { nodeMonitorGracePeriodSeconds: REAL_NODE_GRACE_SECONDS, ...options } : options);
  let realNode: RealNode | undefined;
  try {
    if (withRealNode) {
      realNode = await startRealNode(controlPlane);
      const core = controlPlane.kubeConfig.makeApiClient(CoreV1Api);
      for (const name of controlPlane.nodes) await core.patchNode({ name, body: { spec: { unschedulable: true } } }, MERGE_PATCH);
    }
    if (gateway) await installGatewayApi(controlPlane.kubeConfig);
    const values = { 'agents.storageClass': FAKE_STORAGE_CLASS, ...(gateway ? TEST_GATEWAY.values : {}) };
    const workers: WorkerIdentity[] = [];
    for (const release of releases) workers.push(await installWorkerIdentity(controlPlane, release, values));
    const provisioner = await startFakeVolumeProvisioner(controlPlane.kubeConfig, realNode && { node: realNode.name, dir: realNode.volumesDir });
    const core = controlPlane.kubeConfig.makeApiClient(CoreV1Api);
    const namespace = (name: string) =>
      core.readNamespace({ name }).catch((err: { code?: number }) => {
        if (err.code === 404) return null;
        throw err;
      });
    let stopped: Promise<void> | undefined;
    return {
      controlPlane,
      realNode,
      provisioner,
      workerKubeconfigPath: workers[0].kubeconfigPath,
      workers,
      backend(config = {}, workspaceStorage) {
        const full = { ...TEST_BACKEND_CONFIG, ...(gateway ? TEST_GATEWAY.config : {}), ...(realNode ? { agentImage: AGENT_TEST_IMAGE } : {}), ...config };
        const worker = workers.find((w) => w.release.name === full.release);
        if (!worker) throw new Error(`no worker of release ${full.release} was installed (releases: ${releases.map((r) => r.name).join(', ')})`);
        const kubeConfig = new KubeConfig();
        kubeConfig.loadFromFile(worker.kubeconfigPath);
        return new KubernetesBackend({ kubeConfig, config: full, workspaceStorage });
      },
      admin: { core, networking: controlPlane.kubeConfig.makeApiClient(NetworkingV1Api) },
      namespace,
      namespaceGone: (name) => waitFor(async () => (await namespace(name)) === null, 60_000, `namespace ${name} to go`),
      stop() {
        // The node before the control plane: its kubelet would otherwise log the apiserver's departure.
        stopped ??= provisioner
          .stop()
          .finally(() => realNode?.stop())
          .finally(() => controlPlane.stop());
        return stopped;
      },
    };
  } catch (err) {
    await realNode?.stop();
    await controlPlane.stop();
    throw err;
  }
}

/** One environment per test file (two kwok nodes, the workers of `releases`): started before its tests, stopped after them. */
export function useKubeBackend(releases?: ChartRelease[], environmentOptions?: { gateway?: boolean; realNode?: boolean }): () => KubeBackendFixture {
  let environment: KubeBackendEnvironment | undefined;
  let starting: Promise<KubeBackendEnvironment> | undefined;
  const timeoutMs = environmentOptions?.realNode ? REAL_NODE_START_TIMEOUT_MS : undefined;
  beforeAll(async () => {
    starting = startKubeBackendEnvironment({ nodes: 2 }, releases, environmentOptions);
    environment = await starting;
  }, timeoutMs);
  // A start that outlived its beforeAll is still stopped once it is done (a real node must not be left running).
  afterAll(async () => (environment ?? (await starting?.catch(() => undefined)))?.stop(), timeoutMs);
  return () => {
    if (!environment) throw new Error('the Kubernetes fixture did not start (see beforeAll)');
    return environment;
  };
}
