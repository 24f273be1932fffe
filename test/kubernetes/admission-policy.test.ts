/**
 * The chart's ValidatingAdmissionPolicy on a real apiserver, from the side of a compromised worker: holding the
 * worker's identity (its ServiceAccount's user, BACKEND_RULES), each attack is refused, by the policy, with the rule
 * it breaks; the backend's own session is admitted. Attacks are dry runs (admission runs, nothing is stored).
 *
 * Pod Security would stop several pod attacks first: the attack namespace enforces `privileged`, as a cluster
 * exempting the worker from Pod Security would, so that only the policy stands in the way.
 */
import { randomUUID } from 'node:crypto';
import { KubernetesObjectApi, PatchStrategy, RbacAuthorizationV1Api, type KubernetesObject, type V1ValidatingAdmissionPolicy } from '@kubernetes/client-node';
import type { AgentSpec, NamespaceSpec } from '../../lib/compute/backend';
import { AGENT, LABEL, agentPod, agentRoute, namespaceObject, tlsSecret } from '../../lib/compute/kubernetes/objects';
import { placementFor } from '../../lib/naming';
import { FAKE_STORAGE_CLASS } from '../fakes/fake-volume-provisioner';
import { waitFor } from '../harness/wait';
import { TEST_BACKEND_CONFIG, TEST_GATEWAY, useKubeBackend } from './backend-fixture';
import { type Request, deniedBy, objectApi, outcome, waitForPolicy } from './worker-identity';

// With a route from laptops, so that the policy's TLSRoute rule is tried too.
const kube = useKubeBackend(undefined, { gateway: true });

const OTHER_RELEASE = 'rbs-other';
const credentials = { caCertPem: 'CA PEM', certPem: 'CERT PEM', keyPem: 'KEY PEM' };
const run = randomUUID().slice(0, 8);

function session(user: string): NamespaceSpec & AgentSpec {
  const { namespace, volume } = placementFor(`${user}-${run}`, `/home/${user}/src`);
  return { namespace, volume, user, sessionId: randomUUID() };
}
/** A session namespace of the worker's release (Pod Security relaxed, see above) and one of another release. */
const ours = session('mallory');
const theirs = session('victim');
const plain = `plain-${run}`;
/** PVs: another release's volume, a volume of another StorageClass, and one of the workspace class bound elsewhere. */
const PV = { theirs: `pv-theirs-${run}`, otherClass: `pv-other-class-${run}`, stray: `pv-stray-${run}` };

const create =
  (object: KubernetesObject): Request =>
  (api) =>
    api.create(object, undefined, 'All');
const apply =
  (object: KubernetesObject): Request =>
  (api) =>
    api.patch(object, undefined, 'All', 'mallory', true, PatchStrategy.ServerSideApply);
const mergePatch =
  (object: KubernetesObject): Request =>
  (api) =>
    api.patch(object, undefined, 'All', undefined, undefined, PatchStrategy.MergePatch);
const remove =
  (object: KubernetesObject): Request =>
  (api) =>
    api.delete(object, undefined, 'All');

/** The agent pod as the backend builds it, changed by `change`. */
function pod(namespace: string, change: (spec: any) => void = () => undefined): KubernetesObject {
  const agent = agentPod({ ...ours, namespace }, TEST_BACKEND_CONFIG, 1);
  change(agent.spec);
  return agent;
}
const container = (change: (securityContext: any) => void) => (spec: any) => change(spec.containers[0].securityContext);
const service = (namespace: string, spec: object): KubernetesObject =>
  ({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'exposed', namespace }, spec: { ports: [{ port: AGENT.port }], ...spec } }) as KubernetesObject;
const persistentVolume = (name: string, labels?: Record<string, string>): KubernetesObject =>
  ({ apiVersion: 'v1', kind: 'PersistentVolume', metadata: { name, ...(labels ? { labels } : {}) } }) as KubernetesObject;
const volumeLabels = (release: string, volume: string) => ({ [LABEL.managedBy]: 'rbs', [LABEL.release]: release, [LABEL.volume]: volume });

/** The session's TLSRoute as the backend builds it, changed by `change`. */
function route(change: (spec: any) => void): KubernetesObject {
  const object = agentRoute(ours, { ...TEST_BACKEND_CONFIG, ...TEST_GATEWAY.config });
  change(object.spec);
  return object;
}
const ROUTE_RULE = "routes its namespace's host";

/** Each attack, and a part of the message of the policy's rule that must refuse it. */
const ATTACKS: Array<{ attack: string; rule: string; request: Request }> = [
  {
    attack: 'a Secret in kube-system',
    rule: 'writes only in namespaces labelled',
    request: create(tlsSecret({ ...ours, namespace: 'kube-system' }, credentials, TEST_BACKEND_CONFIG)),
  },
  {
    attack: 'a pod in kube-system',
    rule: 'writes only in namespaces labelled',
    request: create(pod('kube-system', (spec) => (spec.serviceAccountName = 'default'))),
  },
  { attack: 'an object in an unlabelled namespace', rule: 'writes only in namespaces labelled', request: create(service(plain, {})) },
  {
    attack: "an object in another release's session namespace",
    rule: 'writes only in namespaces labelled',
    request: create(tlsSecret(theirs, credentials, TEST_BACKEND_CONFIG)),
  },
  {
    attack: 'a privileged pod',
    rule: 'is not privileged',
    request: create(
      pod(
        ours.namespace,
        container((c) => Object.assign(c, { privileged: true, allowPrivilegeEscalation: true })),
      ),
    ),
  },
  {
    attack: 'a privileged init container',
    rule: 'is not privileged',
    request: create(
      pod(ours.namespace, (spec) => (spec.initContainers = [{ name: 'init', image: spec.containers[0].image, securityContext: { privileged: true } }])),
    ),
  },
  {
    attack: 'a pod that may escalate privileges',
    rule: 'is not privileged',
    request: create(
      pod(
        ours.namespace,
        container((c) => (c.allowPrivilegeEscalation = true)),
      ),
    ),
  },
  {
    attack: 'a pod that adds CAP_SYS_ADMIN',
    rule: 'is not privileged',
    request: create(
      pod(
        ours.namespace,
        container((c) => (c.capabilities = { drop: ['ALL'], add: ['SYS_ADMIN'] })),
      ),
    ),
  },
  {
    attack: 'a hostPath pod',
    rule: 'mounts only claims, Secrets and emptyDirs',
    request: create(pod(ours.namespace, (spec) => (spec.volumes[0] = { name: 'workspace', hostPath: { path: '/' } }))),
  },
  {
    attack: "a pod with its ServiceAccount's token",
    rule: 'mounts only claims, Secrets and emptyDirs',
    request: create(pod(ours.namespace, (spec) => (spec.automountServiceAccountToken = true))),
  },
  { attack: 'a hostNetwork pod', rule: 'shares no host namespace', request: create(pod(ours.namespace, (spec) => (spec.hostNetwork = true))) },
  { attack: 'a hostPID pod', rule: 'shares no host namespace', request: create(pod(ours.namespace, (spec) => (spec.hostPID = true))) },
  { attack: 'a hostIPC pod', rule: 'shares no host namespace', request: create(pod(ours.namespace, (spec) => (spec.hostIPC = true))) },
  {
    attack: 'a Secret of another type (a token of the namespace ServiceAccount)',
    rule: 'the only Secret',
    request: create({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: AGENT.tlsSecret, namespace: ours.namespace, annotations: { 'kubernetes.io/service-account.name': AGENT.name } },
      type: 'kubernetes.io/service-account-token',
    } as KubernetesObject),
  },
  {
    attack: 'a TLS Secret of another name',
    rule: 'the only Secret',
    request: create({
      ...tlsSecret(ours, credentials, TEST_BACKEND_CONFIG),
      metadata: { name: 'registry-tls', namespace: ours.namespace },
    } as KubernetesObject),
  },
  { attack: 'a LoadBalancer Service', rule: 'of type ClusterIP', request: create(service(ours.namespace, { type: 'LoadBalancer' })) },
  {
    attack: 'a Service with externalIPs (intercepting traffic to them)',
    rule: 'of type ClusterIP',
    request: create(service(ours.namespace, { externalIPs: ['8.8.8.8'] })),
  },
  {
    attack: 'a namespace without the release',
    rule: 'a namespace the RBS worker writes carries',
    request: create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: `rogue-${run}` } } as KubernetesObject),
  },
  {
    attack: 'its session namespace relabelled to Pod Security privileged',
    rule: 'a namespace the RBS worker writes carries',
    request: apply({
      ...namespaceObject(ours, TEST_BACKEND_CONFIG),
      metadata: { name: ours.namespace, labels: { 'pod-security.kubernetes.io/enforce': 'privileged' } },
    }),
  },
  {
    attack: "another release's namespace taken over",
    rule: 'changes and deletes only namespaces',
    request: apply(namespaceObject(theirs, TEST_BACKEND_CONFIG)),
  },
  {
    attack: "another release's namespace deleted",
    rule: 'changes and deletes only namespaces',
    request: remove({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: theirs.namespace } }),
  },
  {
    attack: 'an unlabelled namespace deleted',
    rule: 'changes and deletes only namespaces',
    request: remove({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: plain } }),
  },
  {
    attack: 'a claim of another StorageClass, naming a volume to bind',
    rule: 'of the workspace StorageClass',
    request: create({
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: 'loot', namespace: ours.namespace },
      spec: { accessModes: ['ReadWriteMany'], storageClassName: 'standard', volumeName: PV.otherClass, resources: { requests: { storage: '1Gi' } } },
    } as KubernetesObject),
  },
  {
    attack: "another release's volume labelled as ours",
    rule: "only release rbs's volumes",
    request: apply(persistentVolume(PV.theirs, volumeLabels('rbs', theirs.volume))),
  },
  { attack: "another release's volume deleted", rule: "only release rbs's volumes", request: remove(persistentVolume(PV.theirs)) },
  {
    attack: 'a volume of another StorageClass taken on',
    rule: "only release rbs's volumes",
    request: apply(persistentVolume(PV.otherClass, volumeLabels('rbs', ours.volume))),
  },
  {
    attack: 'an unlabelled volume taken on with its claim pointed at ours',
    rule: "only release rbs's volumes",
    request: mergePatch({
      ...persistentVolume(PV.stray, volumeLabels('rbs', ours.volume)),
      spec: { claimRef: { namespace: ours.namespace, name: ours.volume, uid: null } },
    } as KubernetesObject),
  },
  {
    attack: "a route taking another session's host",
    rule: ROUTE_RULE,
    request: apply(route((spec) => (spec.hostnames = [`${theirs.namespace}.agents.rbs.test`]))),
  },
  { attack: 'a route taking every host of the domain', rule: ROUTE_RULE, request: apply(route((spec) => (spec.hostnames = ['*.agents.rbs.test']))) },
  {
    attack: 'a route through another Gateway',
    rule: ROUTE_RULE,
    request: apply(route((spec) => (spec.parentRefs[0] = { ...spec.parentRefs[0], namespace: 'kube-system', name: 'public' }))),
  },
  {
    attack: "a route to a Service of another namespace (the cluster's DNS)",
    rule: ROUTE_RULE,
    request: apply(route((spec) => (spec.rules[0].backendRefs[0] = { ...spec.rules[0].backendRefs[0], namespace: 'kube-system', name: 'kube-dns', port: 53 }))),
  },
  { attack: 'a route to another Service of its namespace', rule: ROUTE_RULE, request: apply(route((spec) => (spec.rules[0].backendRefs[0].name = 'exposed'))) },
  {
    attack: "a kind outside the worker's ClusterRole, granted by someone else's binding",
    rule: 'only the kinds of its ClusterRole',
    request: create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'loot', namespace: ours.namespace } } as KubernetesObject),
  },
];

/** Somebody else's grant that reaches the worker too: ConfigMaps everywhere (the last attack uses it). */
async function grantConfigMaps(name: string, users: string[]): Promise<void> {
  const rbac = kube().controlPlane.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
  await rbac.createClusterRole({ body: { metadata: { name }, rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['create'] }] } });
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
      subjects: users.map((user) => ({ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user })),
    },
  });
}

beforeAll(async () => {
  const { core } = kube().admin;
  const admin = KubernetesObjectApi.makeApiClient(kube().controlPlane.kubeConfig);
  await kube().backend().ensureNamespace(ours);
  await core.patchNamespace({
    name: ours.namespace,
    body: [{ op: 'replace', path: '/metadata/labels/pod-security.kubernetes.io~1enforce', value: 'privileged' }],
  });
  // Pods are admitted only once the quota controller has counted the namespace's quota.
  await waitFor(
    async () => !!(await core.readNamespacedResourceQuota({ name: 'session-quota', namespace: ours.namespace })).status?.hard,
    30_000,
    'the session quota to be counted',
  );
  await admin.create(namespaceObject(theirs, { ...TEST_BACKEND_CONFIG, release: OTHER_RELEASE }));
  await core.createNamespace({ body: { metadata: { name: plain } } });
  const volume = (name: string, storageClassName: string, labels?: Record<string, string>) =>
    core.createPersistentVolume({
      body: {
        metadata: { name, labels },
        spec: {
          capacity: { storage: '1Gi' },
          accessModes: ['ReadWriteMany'],
          storageClassName,
          persistentVolumeReclaimPolicy: 'Retain',
          csi: { driver: 'filestore.csi.storage.gke.io', volumeHandle: name },
          // Bound elsewhere, so that no claim of the tests binds it meanwhile.
          claimRef: { namespace: 'elsewhere', name },
        },
      },
    });
  await volume(PV.theirs, FAKE_STORAGE_CLASS, volumeLabels(OTHER_RELEASE, theirs.volume));
  await volume(PV.otherClass, 'standard');
  await volume(PV.stray, FAKE_STORAGE_CLASS);
  await grantConfigMaps(`configmap-writers-${run}`, [kube().workers[0].user]);
});

describe('a compromised worker is refused, by the policy', () => {
  test.each(ATTACKS)('$attack', async ({ rule, request }) => {
    const result = await outcome(request(objectApi(kube().workerKubeconfigPath)));
    expect(result).toEqual({ admitted: false, code: 422, message: expect.stringContaining(deniedBy(kube().workers[0].policy)) });
    expect(result.admitted === false && result.message).toContain(rule);
  });
});

test("the backend's own session, built by objects.ts, is admitted from its namespace to its volume's deletion", async () => {
  const backend = kube().backend();
  const spec = session('alice');
  await backend.ensureNamespace(spec);
  await backend.ensureVolume(spec);
  await backend.installAgentCredentials(spec, credentials);
  await backend.startAgent(spec);
  await backend.waitForAgent(spec, { deadlineMs: 30_000, onProgress: () => undefined }); // labels and retains the new PV
  await backend.stopAgent(spec.namespace);
  await backend.deleteNamespace(spec.namespace);
  // The next session re-binds the retained volume; then it expires.
  const next = { ...spec, sessionId: randomUUID() };
  await backend.ensureNamespace(next);
  await backend.ensureVolume(next);
  await backend.installAgentCredentials(next, credentials);
  await backend.startAgent(next);
  await backend.waitForAgent(next, { deadlineMs: 30_000, onProgress: () => undefined });
  await backend.deleteNamespace(next.namespace);
  await backend.deleteVolume(next.volume);
  expect((await kube().admin.core.listPersistentVolume({ labelSelector: `${LABEL.volume}=${next.volume}` })).items).toEqual([]);
});

/**
 * Mutation test of the policy: for each of its rules, the same policy without that rule, bound to a user of its own
 * (the worker's ClusterRole and grants), admits the attacks named after the rule. So every rule is needed, and a
 * broken policy fails the attack tests above.
 */
test('each rule of the policy is what stops its attacks: the policy without it admits them', async () => {
  const admin = KubernetesObjectApi.makeApiClient(kube().controlPlane.kubeConfig);
  const worker = kube().workers[0];
  const policy = worker.objects.find((o): o is V1ValidatingAdmissionPolicy => o.kind === 'ValidatingAdmissionPolicy')!;
  const role = worker.objects.find((o) => o.kind === 'ClusterRole')!.metadata!.name!;
  const rules = policy.spec!.validations!;
  const mutants = rules.map((removed, i) => ({ removed, user: `rbs-mutant-${i}-${run}`, name: `rbs-mutant-${i}-${run}` }));
  const rbac = kube().controlPlane.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
  await grantConfigMaps(
    `configmap-writing-mutants-${run}`,
    mutants.map((m) => m.user),
  );
  for (const { removed, user, name } of mutants) {
    await admin.create({
      ...policy,
      metadata: { name },
      spec: {
        ...policy.spec,
        matchConditions: [{ name: 'is-the-mutant', expression: `request.userInfo.username == '${user}'` }],
        validations: rules.filter((r) => r !== removed),
      },
    } as KubernetesObject);
    await admin.create({
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: { name },
      spec: { policyName: name, validationActions: ['Deny'] },
    } as KubernetesObject);
    await rbac.createClusterRoleBinding({
      body: {
        metadata: { name },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }],
      },
    });
  }

  for (const { removed, user, name } of mutants) {
    const api = objectApi(kube().controlPlane.kubeconfigFor(user));
    const caught = ATTACKS.filter((a) => removed.message?.includes(a.rule));
    expect({ rule: removed.message, stopsAnAttack: caught.length > 0 }).toEqual({ rule: removed.message, stopsAnAttack: true });
    // The mutant is in force once it refuses an attack of another rule.
    await waitForPolicy(api, name, ATTACKS.find((a) => !removed.message?.includes(a.rule))!.request);
    for (const { attack, request } of caught) {
      expect({ attack, without: removed.message, result: await outcome(request(api)) }).toEqual({
        attack,
        without: removed.message,
        result: { admitted: true },
      });
    }
  }
});
