/**
 * KubernetesBackend, step by step, against a real apiserver, controller-manager and scheduler with
 * kwok nodes, as a worker that holds exactly BACKEND_RULES.
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AgentProgress, AgentSpec, NamespaceSpec } from '../../lib/compute/backend';
import { MERGE_PATCH } from '../../lib/compute/kubernetes/apply';
import type { KubernetesBackend } from '../../lib/compute/kubernetes/backend';
import { releaseLabels } from '../../lib/compute/kubernetes/objects';
import { isDns1123Label, placementFor } from '../../lib/naming';
import { CertificateAuthority } from '../../lib/pki/ca';
import { OVER_QUOTA, TEST_BACKEND_CONFIG, useKubeBackend } from './backend-fixture';

const kube = useKubeBackend();

let sequence = 0;
/** A fresh session of a fresh (user, workspace), so tests share nothing but the cluster. */
function session(user = `tess${++sequence}`): NamespaceSpec & AgentSpec {
  const { namespace, volume } = placementFor(user, `/home/${user}/src`);
  return { namespace, volume, user, sessionId: randomUUID() };
}

/** More cpu than any (32-cpu) kwok node has. */
const TOO_BIG = {
  ...TEST_BACKEND_CONFIG.profile,
  requests: { cpu: '64', memory: '1Gi' },
  limits: { cpu: '64', memory: '2Gi' },
  quota: { cpu: '64', memory: '2Gi' },
};

/** A real certificate: the backend reads its expiry back. */
let credentials: { caCertPem: string; certPem: string; keyPem: string };
beforeAll(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-kube-ca-'));
  const ca = await CertificateAuthority.loadOrCreate(dir);
  credentials = { caCertPem: ca.certPem, ...(await ca.issue({ kind: 'agent', sessionId: randomUUID() })) };
  fs.rmSync(dir, { recursive: true, force: true });
});
const noProgress = () => undefined;

async function provision(backend: KubernetesBackend, spec: NamespaceSpec & AgentSpec): Promise<void> {
  await backend.ensureNamespace(spec);
  await backend.ensureVolume(spec);
  await backend.installAgentCredentials(spec, credentials);
}

/** Names of each kind of object in the namespace, to catch duplicates and leftovers. */
async function contents(namespace: string): Promise<Record<string, string[]>> {
  const { core, networking } = kube().admin;
  const names = (list: { items: Array<{ metadata?: { name?: string } }> }) => list.items.map((o) => o.metadata!.name!).sort();
  return {
    serviceAccounts: names(await core.listNamespacedServiceAccount({ namespace })).filter((n) => n !== 'default'),
    networkPolicies: names(await networking.listNamespacedNetworkPolicy({ namespace })),
    quotas: names(await core.listNamespacedResourceQuota({ namespace })),
    limitRanges: names(await core.listNamespacedLimitRange({ namespace })),
    services: names(await core.listNamespacedService({ namespace })),
    secrets: names(await core.listNamespacedSecret({ namespace })),
    claims: names(await core.listNamespacedPersistentVolumeClaim({ namespace })),
    pods: names(await core.listNamespacedPod({ namespace })),
  };
}

/** What a session's namespace holds once its agent runs: the claim is named after the volume. */
const everything = (volume: string) => ({
  serviceAccounts: ['agent'],
  networkPolicies: ['agent-egress', 'agent-ingress', 'default-deny'],
  quotas: ['session-quota'],
  limitRanges: ['session-limits'],
  services: ['agent'],
  secrets: ['agent-tls'],
  claims: [volume],
  pods: ['agent'],
});

async function volumePv(volume: string) {
  const list = await kube().admin.core.listPersistentVolume({ labelSelector: `rbs.dev/volume=${volume}` });
  return list.items;
}

test('every step converges when run twice, concurrently, and after a partial or tampered run', async () => {
  const backend = kube().backend();
  const spec = session();
  const { core, networking } = kube().admin;

  await Promise.all([backend.ensureNamespace(spec), backend.ensureNamespace(spec)]);
  // A previous run that stopped half way, and hands that changed what it made.
  await networking.deleteNamespacedNetworkPolicy({ name: 'agent-egress', namespace: spec.namespace });
  await core.deleteNamespacedService({ name: 'agent', namespace: spec.namespace });
  await core.patchNamespacedResourceQuota({
    name: 'session-quota',
    namespace: spec.namespace,
    body: [{ op: 'replace', path: '/spec/hard/limits.cpu', value: '100' }],
  });
  await core.patchNamespace({
    name: spec.namespace,
    body: [{ op: 'replace', path: '/metadata/labels/pod-security.kubernetes.io~1enforce', value: 'privileged' }],
  });
  await backend.ensureNamespace(spec);
  const ns = await kube().namespace(spec.namespace);
  expect(ns?.metadata?.labels?.['pod-security.kubernetes.io/enforce']).toBe('restricted');
  expect((await core.readNamespacedResourceQuota({ name: 'session-quota', namespace: spec.namespace })).spec?.hard?.['limits.cpu']).toBe('1');

  await Promise.all([backend.ensureVolume(spec), backend.ensureVolume(spec)]);
  expect(await backend.agentCertificate(spec.namespace)).toBeNull();
  await backend.installAgentCredentials(spec, credentials);
  await backend.installAgentCredentials(spec, credentials);
  expect(await backend.agentCertificate(spec.namespace)).toBe(credentials.certPem);
  await Promise.all([backend.startAgent(spec), backend.startAgent(spec)]);
  await backend.startAgent(spec);

  const progress: AgentProgress[] = [];
  const address = await backend.waitForAgent(spec, { deadlineMs: 30_000, onProgress: (p) => progress.push(p) });
  expect(address).toBe(`agent.${spec.namespace}.svc:9443`);
  expect(progress.map((p) => p.stage)).toEqual(expect.arrayContaining(['ready']));
  expect(progress.at(-1)?.stage).toBe('ready');
  expect(await backend.waitForAgent(spec, { deadlineMs: 1_000, onProgress: noProgress })).toBe(address);
  expect(await backend.agentProblem(spec.namespace, spec.sessionId)).toBeNull();
  expect(await contents(spec.namespace)).toEqual(everything(spec.volume));
  expect(await backend.listAgents()).toContainEqual({ namespace: spec.namespace, sessionId: spec.sessionId, startedAt: expect.any(Date), id: 'agent' });

  // Suspend and resume: the pod goes, everything else stays; a stopped agent is a problem.
  await backend.stopAgent(spec.namespace);
  await backend.stopAgent(spec.namespace);
  expect(await backend.agentProblem(spec.namespace, spec.sessionId)).toEqual({ detail: expect.stringMatching(/the agent pod does not exist/), gone: true });
  expect((await contents(spec.namespace)).pods).toEqual([]);
  await backend.startAgent(spec);
  await backend.waitForAgent(spec, { deadlineMs: 30_000, onProgress: noProgress });

  await backend.deleteNamespace(spec.namespace);
  await backend.deleteNamespace(spec.namespace);
  expect(await kube().namespace(spec.namespace)).toBeNull();
  expect((await backend.listNamespaces()).map((n) => n.namespace)).not.toContain(spec.namespace);
});

test('a session follows metrics scraping and a traces collector being configured, then removed: their policies, and the agent its endpoint, change when its agent next starts', async () => {
  const before = kube().backend();
  const spec = session();
  await provision(before, spec);
  await before.startAgent(spec);
  expect((await contents(spec.namespace)).networkPolicies).toEqual(['agent-egress', 'agent-ingress', 'default-deny']);

  // The worker restarts with both configured; the session is suspended and resumed.
  const after = kube().backend({
    metricsScrapers: { 'kubernetes.io/metadata.name': 'monitoring' },
    tracesCollector: {
      endpoint: 'http://otel.monitoring.svc:4318/v1/traces',
      namespaceLabels: { 'kubernetes.io/metadata.name': 'monitoring' },
      podLabels: { app: 'otel' },
      port: 4318,
    },
  });
  await after.stopAgent(spec.namespace);
  await after.startAgent(spec);
  expect((await contents(spec.namespace)).networkPolicies).toEqual(['agent-egress', 'agent-ingress', 'agent-metrics', 'agent-traces', 'default-deny']);
  const pod = await kube().admin.core.readNamespacedPod({ name: 'agent', namespace: spec.namespace });
  expect(pod.spec!.containers[0].env).toContainEqual({ name: 'RBS_AGENT_TRACES_ENDPOINT', value: 'http://otel.monitoring.svc:4318/v1/traces' });

  // Both settings removed again: Prometheus and the collector are no longer let through. Removing
  // only the policies RBS_KUBE_* no longer asks for, with the worker's own permissions.
  const removed = kube().backend();
  await removed.stopAgent(spec.namespace);
  await removed.startAgent(spec);
  expect((await contents(spec.namespace)).networkPolicies).toEqual(['agent-egress', 'agent-ingress', 'default-deny']);
  const again = await kube().admin.core.readNamespacedPod({ name: 'agent', namespace: spec.namespace });
  expect(again.spec!.containers[0].env?.map((e) => e.name)).not.toContain('RBS_AGENT_TRACES_ENDPOINT');
  await removed.deleteNamespace(spec.namespace);
});

test('the initial sync is left to the proxy: the step only checks that the volume is bound', async () => {
  const backend = kube().backend();
  const spec = session();
  await provision(backend, spec);
  // Not yet bound: the claim waits for its first consumer, the agent pod.
  await expect(backend.syncWorkspace(spec.volume, '/home/tess/src')).rejects.toThrow(`volume ${spec.volume} is not bound to a session's claim (no PV)`);
  await backend.startAgent(spec);
  await backend.waitForAgent(spec, { deadlineMs: 30_000, onProgress: noProgress });
  // The workspace is a path on the developer's machine, which the worker never reads (nor needs to).
  await backend.syncWorkspace(spec.volume, '/nonexistent/on/this/machine');
  await backend.deleteNamespace(spec.namespace);
  await backend.deleteVolume(spec.volume);
});

test('the volume outlives its namespace as a retained PV that the next session re-binds; deleteVolume removes it and its share', async () => {
  // Stands in for lib/filestore (which needs GCP): records when the backend consults the storage.
  const fakeStorageCalls: string[] = [];
  const fakeWorkspaceStorage = {
    checkCapacity: async (gib: number) => fakeStorageCalls.push(`checkCapacity ${gib}`),
    backupBeforeDelete: async (handle: string) => fakeStorageCalls.push(`backupBeforeDelete ${handle}`),
  };
  const backend = kube().backend({}, fakeWorkspaceStorage);
  const first = session();
  await provision(backend, first);
  await backend.startAgent(first);
  await backend.waitForAgent(first, { deadlineMs: 30_000, onProgress: noProgress });
  const [pv] = await volumePv(first.volume);
  expect(pv.spec).toMatchObject({ persistentVolumeReclaimPolicy: 'Retain', claimRef: { namespace: first.namespace, name: first.volume } });
  expect(pv.metadata?.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'rbs', 'rbs.dev/release': 'rbs', 'rbs.dev/volume': first.volume });

  await backend.deleteNamespace(first.namespace);
  await backend.deleteVolume('some-other-vol-000000000000'); // no PV: nothing to do
  expect((await volumePv(first.volume)).map((v) => v.metadata?.name)).toEqual([pv.metadata?.name]);

  // The next session of the same (user, workspace): same namespace name, same PV.
  const second = { ...first, sessionId: randomUUID() };
  await provision(backend, second);
  await backend.ensureVolume(second);
  await backend.startAgent(second);
  await backend.waitForAgent(second, { deadlineMs: 30_000, onProgress: noProgress });
  const claim = await kube().admin.core.readNamespacedPersistentVolumeClaim({ name: second.volume, namespace: second.namespace });
  expect(claim.spec?.volumeName).toBe(pv.metadata?.name);
  expect(claim.status?.phase).toBe('Bound');
  const [rebound] = await volumePv(first.volume);
  expect(rebound.spec?.claimRef?.uid).toBe(claim.metadata?.uid);
  const handle = pv.spec!.csi!.volumeHandle;
  expect(kube().provisioner.created.filter((h) => h === handle)).toHaveLength(1);

  await expect(backend.deleteVolume(first.volume)).rejects.toThrow(/still bound to .*delete its namespace first/);
  await backend.deleteNamespace(second.namespace);
  await backend.deleteVolume(first.volume);
  await backend.deleteVolume(first.volume);
  expect(await volumePv(first.volume)).toEqual([]);
  expect(kube().provisioner.deleted).toContain(handle);
  // Capacity is checked for the new volume only, not when it is re-bound; the backup precedes the deletion.
  expect(fakeStorageCalls).toEqual(['checkCapacity 10', `backupBeforeDelete ${handle}`]);
});

test('hostile and odd user names give valid, distinct namespaces that the apiserver accepts', async () => {
  const backend = kube().backend();
  const users = [
    'Zoë Ünicode',
    '張偉',
    '🦀 crab',
    'UPPER.Case_Name',
    'x'.repeat(200),
    `${'ü'.repeat(63)}a`,
    '--double--dash--',
    '-',
    '42 leading digits',
    '0',
    'a'.repeat(46) + '-tail',
    'x'.repeat(199) + 'y',
    "robert'); drop table sessions;--",
    '../../etc/passwd',
  ];
  const specs = users.map((user) => ({ ...session(user), user }));
  const names = specs.map((s) => s.namespace);
  expect(new Set(names).size).toBe(users.length);
  for (const name of names) expect(isDns1123Label(name)).toBe(true);
  for (const spec of specs) await backend.ensureNamespace(spec);
  for (const spec of specs) {
    const ns = await kube().namespace(spec.namespace);
    expect(ns?.metadata?.annotations?.['rbs.dev/user']).toBe(spec.user);
    expect(Object.values(ns?.metadata?.labels ?? {})).not.toContain(spec.user);
  }
  await Promise.all(specs.map((spec) => backend.deleteNamespace(spec.namespace)));
});

test('a pod the quota forbids fails at once with QuotaExceeded', async () => {
  const backend = kube().backend({ profile: OVER_QUOTA });
  const spec = session();
  await provision(backend, spec);
  await expect(backend.startAgent(spec)).rejects.toMatchObject({
    name: 'AgentStartError',
    reason: 'QuotaExceeded',
    message: expect.stringMatching(/^QuotaExceeded: agent of session .* exceeded quota: session-quota/),
  });
  expect((await contents(spec.namespace)).pods).toEqual([]);
  await backend.deleteNamespace(spec.namespace);
});

test('an image that cannot be pulled fails with ImagePullBackOff; a pod no node can hold, with Unschedulable at the deadline', async () => {
  const unpullable = kube().backend({ agentImage: 'registry.rbs.test/unpullable:1' });
  const spec = session();
  await provision(unpullable, spec);
  await unpullable.startAgent(spec);
  await expect(unpullable.waitForAgent(spec, { deadlineMs: 30_000, onProgress: noProgress })).rejects.toMatchObject({
    reason: 'ImagePullBackOff',
    message: expect.stringContaining('cannot pull image registry.rbs.test/unpullable:1'),
  });
  expect(await unpullable.agentProblem(spec.namespace, spec.sessionId)).toEqual({ detail: expect.stringMatching(/ImagePullBackOff/), gone: true });
  await unpullable.deleteNamespace(spec.namespace);

  const huge = kube().backend({ profile: TOO_BIG });
  const big = session();
  await provision(huge, big);
  await huge.startAgent(big);
  const progress: AgentProgress[] = [];
  await expect(huge.waitForAgent(big, { deadlineMs: 3_000, onProgress: (p) => progress.push(p) })).rejects.toMatchObject({
    reason: 'Unschedulable',
    message: expect.stringContaining('Insufficient cpu'),
  });
  expect(progress.some((p) => p.detail.includes('not scheduled'))).toBe(true);
  // Not scheduled yet is doubt, not certainty: the cluster may yet grow a node for it.
  expect(await huge.agentProblem(big.namespace, big.sessionId)).toEqual({ detail: expect.stringContaining('not scheduled'), gone: false });
  await huge.deleteNamespace(big.namespace);
});

test("a namespace removed under its session, being deleted or gone: each later step fails with NamespaceGoneError (it ends the session, never retried); a new session makes it again, and the cleanup's removals of the old one spare it", async () => {
  const backend = kube().backend();
  const spec = session();
  const { namespace } = spec;
  await backend.ensureNamespace(spec);
  const steps = [() => backend.ensureVolume(spec), () => backend.installAgentCredentials(spec, credentials), () => backend.startAgent(spec)];
  // An object with a finalizer holds the namespace in Terminating, as any slow finalizer would.
  const held = { name: 'held', namespace };
  await kube().admin.core.createNamespacedConfigMap({ namespace, body: { metadata: { ...held, finalizers: ['rbs.test/hold'] } } });
  await kube().admin.core.deleteNamespace({ name: namespace });
  for (const step of steps) {
    await expect(step()).rejects.toMatchObject({
      name: 'NamespaceGoneError',
      message: expect.stringContaining(`namespace ${namespace} was removed under its session`),
    });
  }
  await expect(backend.ensureVolume(spec)).rejects.toThrow(/because it is being terminated/);
  await kube().admin.core.patchNamespacedConfigMap({ ...held, body: { metadata: { finalizers: null } } }, MERGE_PATCH);
  await kube().namespaceGone(namespace);
  for (const step of steps) await expect(step()).rejects.toMatchObject({ name: 'NamespaceGoneError', message: expect.stringContaining('not found') });
  // The step that makes it makes it again: a new session of the same workspace starts as ever.
  const next = { ...spec, sessionId: randomUUID() };
  await provision(backend, next);
  await backend.startAgent(next);
  // A cleanup pass found the old session's namespace and agent before then: removing them spares the new ones of the same names.
  expect(await backend.deleteNamespace(namespace, spec.sessionId)).toBe('spared');
  expect(await backend.killAgent({ namespace, sessionId: spec.sessionId, id: 'agent', startedAt: new Date() })).toBe('spared');
  expect((await kube().namespace(namespace))?.metadata?.labels).toMatchObject({ 'rbs.dev/session-id': next.sessionId });
  const agent = await kube().admin.core.readNamespacedPod({ namespace, name: 'agent' });
  expect(agent.metadata?.labels).toMatchObject({ 'rbs.dev/session-id': next.sessionId });
  expect(agent.metadata?.deletionTimestamp).toBeUndefined();
  // Made again (for a third session) between the deletion's read and its request: the request names the
  // object read, so it fails, and the namespace there now is judged afresh, and kept.
  const { core } = backend['api'];
  const forward = core.deleteNamespace.bind(core);
  const third = randomUUID();
  jest.spyOn(core, 'deleteNamespace').mockImplementationOnce(async (request) => {
    await kube().admin.core.deleteNamespace({ name: namespace });
    await kube().namespaceGone(namespace);
    await kube().admin.core.createNamespace({ body: { metadata: { name: namespace, labels: { ...releaseLabels('rbs'), 'rbs.dev/session-id': third } } } });
    return forward(request);
  });
  expect(await backend.deleteNamespace(namespace, next.sessionId)).toBe('spared');
  expect((await kube().namespace(namespace))?.metadata).toMatchObject({ labels: { 'rbs.dev/session-id': third } });
  expect((await kube().namespace(namespace))?.metadata?.deletionTimestamp).toBeUndefined();
  expect(await backend.deleteNamespace(namespace, third)).toBe('removed');
  expect(await kube().namespace(namespace)).toBeNull();
  expect(await backend.deleteNamespace(namespace, third)).toBe('removed'); // gone already
});

test('a namespace slow to go is watched until it is gone: one read and one list, not a read per look', async () => {
  const backend = kube().backend();
  const spec = session();
  await backend.ensureNamespace(spec);
  // Someone else's finalizer holds the namespace in Terminating until it is taken off.
  const hold = (finalizers: string[] | null) => kube().admin.core.patchNamespace({ name: spec.namespace, body: { metadata: { finalizers } } }, MERGE_PATCH);
  await hold(['rbs.test/hold']);
  const { core } = backend['api'];
  const reads = jest.spyOn(core, 'readNamespace');
  const lists = jest.spyOn(core, 'listNamespace');
  let settled = false;
  const deleting = backend.deleteNamespace(spec.namespace).finally(() => (settled = true));
  await new Promise((r) => setTimeout(r, 5000));
  expect(settled).toBe(false);
  const released = Date.now();
  await hold(null);
  expect(await deleting).toBe('removed');
  expect(Date.now() - released).toBeLessThan(3000);
  expect(await kube().namespace(spec.namespace)).toBeNull();
  expect(reads).toHaveBeenCalledTimes(1); // the one judged before the deletion
  expect(lists).toHaveBeenCalledTimes(1);
  reads.mockRestore();
  lists.mockRestore();
});

test('a namespace it does not manage is never deleted, nor taken over', async () => {
  const backend = kube().backend();
  const spec = session();
  await kube().admin.core.createNamespace({ body: { metadata: { name: spec.namespace } } });
  await expect(backend.deleteNamespace(spec.namespace)).rejects.toThrow(/is not managed by rbs release rbs/);
  await expect(backend.ensureNamespace({ ...spec, sessionId: randomUUID() })).rejects.toThrow(/is not managed by rbs release rbs/);
  expect(await kube().namespace(spec.namespace)).not.toBeNull();
  await kube().admin.core.deleteNamespace({ name: spec.namespace });
});

test('names that are not DNS-1123 labels are refused before any request', async () => {
  const backend = kube().backend();
  const refused = /not a DNS-1123 label/;
  await expect(backend.ensureNamespace({ ...session(), namespace: 'kube-system/../x' })).rejects.toThrow(refused);
  await expect(backend.ensureVolume({ ...session(), namespace: 'ok-rbs-000000000000', volume: 'Bad_Volume' })).rejects.toThrow(refused);
  await expect(backend.deleteNamespace('')).rejects.toThrow(refused);
  await expect(backend.killAgent({ namespace: 'UPPER', sessionId: 'x', startedAt: new Date(), id: 'agent' })).rejects.toThrow(refused);
});
