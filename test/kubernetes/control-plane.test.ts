/**
 * The Kubernetes control plane of test/harness behaves like a cluster: admission, scheduling onto kwok
 * nodes, the controllers the backend relies on (namespace, quota, service account, volume binding),
 * image-pull failures on demand, and RBAC for other users.
 */
import { randomBytes } from 'node:crypto';
import { CoreV1Api, KubeConfig, RbacAuthorizationV1Api, type V1Pod } from '@kubernetes/client-node';
import { useKubeControlPlane } from '../harness/kube-control-plane';
import { waitFor } from '../harness/wait';

const controlPlane = useKubeControlPlane();
const core = () => controlPlane().kubeConfig.makeApiClient(CoreV1Api);

/** A namespace that enforces Pod Security `restricted`, as session namespaces do. */
async function restrictedNamespace(): Promise<string> {
  const name = `cp-test-${randomBytes(4).toString('hex')}`;
  await core().createNamespace({
    body: { metadata: { name, labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } } },
  });
  return name;
}

function restrictedPod(name: string, containers: Array<{ name: string; image: string }>): V1Pod {
  return {
    metadata: { name },
    spec: {
      securityContext: { runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } },
      containers: containers.map((c) => ({
        ...c,
        securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
        resources: { requests: { cpu: '100m', memory: '64Mi' }, limits: { cpu: '200m', memory: '128Mi' } },
      })),
    },
  };
}

async function readPod(namespace: string, name: string): Promise<V1Pod> {
  return core().readNamespacedPod({ namespace, name });
}

const isReady = (pod: V1Pod) => pod.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';

test('a restricted pod is scheduled onto a kwok node and becomes Ready, counted by the namespace quota', async () => {
  const namespace = await restrictedNamespace();
  await core().createNamespacedResourceQuota({
    namespace,
    body: { metadata: { name: 'session' }, spec: { hard: { 'requests.cpu': '1', 'requests.memory': '1Gi' } } },
  });
  // The resourcequota controller fills in the status; until then admission refuses pods.
  await waitFor(async () => !!(await core().readNamespacedResourceQuota({ namespace, name: 'session' })).status?.hard, 30_000, 'quota status');

  // Admission: Pod Security first, then the quota, which wants every pod to declare what it counts.
  const privileged: V1Pod = { metadata: { name: 'root' }, spec: { containers: [{ name: 'app', image: 'registry.example/agent:1' }] } };
  await expect(core().createNamespacedPod({ namespace, body: privileged })).rejects.toMatchObject({
    code: 403,
    body: expect.stringContaining('violates PodSecurity'),
  });
  const unbounded = restrictedPod('unbounded', [{ name: 'app', image: 'registry.example/agent:1' }]);
  delete unbounded.spec!.containers[0].resources;
  await expect(core().createNamespacedPod({ namespace, body: unbounded })).rejects.toMatchObject({
    code: 403,
    body: expect.stringContaining('must specify'),
  });

  await core().createNamespacedPod({ namespace, body: restrictedPod('agent', [{ name: 'app', image: 'registry.example/agent:1' }]) });
  await waitFor(async () => isReady(await readPod(namespace, 'agent')), 30_000, 'pod agent Ready');
  const pod = await readPod(namespace, 'agent');
  expect(controlPlane().nodes).toContain(pod.spec?.nodeName);
  expect(pod.status?.phase).toBe('Running');
  expect(pod.status?.podIP).toMatch(/^10\.244\./);
  await waitFor(
    async () => (await core().readNamespacedResourceQuota({ namespace, name: 'session' })).status?.used?.['requests.cpu'] === '100m',
    30_000,
    'quota usage of the pod',
  );
});

test('a container whose image contains "unpullable" is in ImagePullBackOff and its pod never becomes Ready', async () => {
  const namespace = await restrictedNamespace();
  await core().createNamespacedPod({
    namespace,
    body: restrictedPod('broken', [
      { name: 'app', image: 'registry.example/unpullable:1' },
      { name: 'sidecar', image: 'registry.example/sidecar:1' },
    ]),
  });
  await core().createNamespacedPod({ namespace, body: restrictedPod('healthy', [{ name: 'app', image: 'registry.example/agent:1' }]) });

  const waiting = (pod: V1Pod) => pod.status?.containerStatuses?.find((c) => c.name === 'app')?.state?.waiting;
  await waitFor(async () => waiting(await readPod(namespace, 'broken'))?.reason === 'ImagePullBackOff', 30_000, 'ImagePullBackOff');
  // kwok handles both pods alike otherwise: once the healthy one is Ready, the broken one had its chance.
  await waitFor(async () => isReady(await readPod(namespace, 'healthy')), 30_000, 'pod healthy Ready');
  const broken = await readPod(namespace, 'broken');
  expect(waiting(broken)?.message).toContain('registry.example/unpullable:1');
  expect(broken.status?.containerStatuses?.find((c) => c.name === 'sidecar')?.state?.running).toBeDefined();
  expect(broken.status?.phase).toBe('Pending');
  expect(isReady(broken)).toBe(false);
});

test('a claim binds to a matching persistent volume', async () => {
  const namespace = await restrictedNamespace();
  const storage = { storageClassName: `manual-${namespace}`, accessModes: ['ReadWriteMany'] };
  await core().createPersistentVolume({
    body: { metadata: { name: namespace }, spec: { ...storage, capacity: { storage: '1Gi' }, hostPath: { path: `/tmp/${namespace}` } } },
  });
  // Once the controller knows the volume, a new claim binds at once (else at its next resync, 15 s later).
  await waitFor(async () => (await core().readPersistentVolume({ name: namespace })).status?.phase === 'Available', 30_000, 'volume Available');
  await core().createNamespacedPersistentVolumeClaim({
    namespace,
    body: { metadata: { name: 'workspace' }, spec: { ...storage, resources: { requests: { storage: '1Gi' } } } },
  });
  await waitFor(
    async () => (await core().readNamespacedPersistentVolumeClaim({ namespace, name: 'workspace' })).status?.phase === 'Bound',
    30_000,
    'claim Bound',
  );
  expect((await core().readPersistentVolume({ name: namespace })).spec?.claimRef?.namespace).toBe(namespace);
});

test('deleting a namespace with running pods completes', async () => {
  const namespace = await restrictedNamespace();
  await core().createNamespacedPod({ namespace, body: restrictedPod('agent', [{ name: 'app', image: 'registry.example/agent:1' }]) });
  await waitFor(async () => isReady(await readPod(namespace, 'agent')), 30_000, 'pod agent Ready');

  await core().deleteNamespace({ name: namespace });
  await waitFor(
    () =>
      core()
        .readNamespace({ name: namespace })
        .then(
          () => false,
          (err) => err.code === 404,
        ),
    60_000,
    `namespace ${namespace} gone`,
  );
});

test('another user is subject to RBAC: denied listing namespaces, allowed through a group binding', async () => {
  const as = (user: string, groups?: string[]) => {
    const config = new KubeConfig();
    config.loadFromFile(controlPlane().kubeconfigFor(user, groups));
    return config.makeApiClient(CoreV1Api);
  };
  expect((await core().listNamespace()).items.map((n) => n.metadata?.name)).toContain('default');
  // 403 (not 401): the apiserver knows alice from her certificate and refuses her.
  await expect(as('alice').listNamespace()).rejects.toMatchObject({ code: 403, body: expect.stringContaining('User \\"alice\\"') });
  const longName = `system:serviceaccount:${'n'.repeat(63)}:agent`; // longer than X.520 allows a CN
  await expect(as(longName).listNamespace()).rejects.toMatchObject({ code: 403 });

  const group = `viewers-${randomBytes(4).toString('hex')}`;
  await controlPlane()
    .kubeConfig.makeApiClient(RbacAuthorizationV1Api)
    .createClusterRoleBinding({
      body: {
        metadata: { name: group },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: group }],
      },
    });
  const bob = as('bob', [group]);
  await waitFor(
    () =>
      bob.listNamespace().then(
        () => true,
        () => false,
      ),
    10_000,
    'bob allowed through his group',
  );
  await expect(as('alice').listNamespace()).rejects.toMatchObject({ code: 403 });
  expect(() => controlPlane().kubeconfigFor('')).toThrow(/user name/);
});
