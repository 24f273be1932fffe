/**
 * Sessions on the Kubernetes backend through the real workflow: orchestrator, Temporal worker and
 * KubernetesBackend (as a worker holding exactly BACKEND_RULES) on a real control plane with kwok nodes.
 */
import { X509Certificate, randomUUID } from 'node:crypto';
import type { V1Pod } from '@kubernetes/client-node';
import type { AgentProblem } from '../../lib/compute/backend';
import { cleanupScheduleId } from '../../services/worker/cleanup-schedule';
import { useStack } from '../harness/stack';
import { waitFor } from '../harness/wait';
import { TEST_BACKEND_CONFIG, useKubeBackend } from './backend-fixture';

const kube = useKubeBackend();

const sessionLabels = (sessionId: string, volume: string) => ({
  'app.kubernetes.io/managed-by': 'rbs',
  'rbs.dev/release': TEST_BACKEND_CONFIG.release,
  'rbs.dev/session-id': sessionId,
  'rbs.dev/volume': volume,
});

async function persistentVolumesOf(volume: string) {
  return (await kube().admin.core.listPersistentVolume({ labelSelector: `rbs.dev/volume=${volume}` })).items;
}

/** Read-modify-write against writers of the same object (kwok, the node controller): again on 409. */
async function retryOnConflict(update: () => Promise<void>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await update();
    } catch (err) {
      if ((err as { code?: number }).code !== 409 || attempt >= 10) throw err;
    }
  }
}

// In a describe block, so that the stack stops (its afterAll runs) before the cluster does.
describe('sessions on the Kubernetes backend', () => {
  const stack = useStack({}, () => ({ backend: kube().backend() }));

  /** What each agentProblem of the worker's backend finds in `namespace`, from now on. */
  function recordProbes(namespace: string): Array<AgentProblem | null> {
    const backend = stack().worker.backend;
    const look = backend.agentProblem.bind(backend);
    const probes: Array<AgentProblem | null> = [];
    backend.agentProblem = async (ns, sessionId) => {
      const problem = await look(ns, sessionId);
      if (ns === namespace) probes.push(problem);
      return problem;
    };
    return probes;
  }

  /** A READY session of `user`, its agent pod, that pod's node, and the probes of its namespace from now on. */
  async function sessionOnNode(user: string) {
    const client = await stack().client(user);
    const session = await client.getServer(stack().workspace());
    const before = await kube().admin.core.readNamespacedPod({ name: 'agent', namespace: session.namespace });
    const nodeName = before.spec!.nodeName!;
    const node = await kube().admin.core.readNode({ name: nodeName });
    return { client, session, before, nodeName, node, probes: recordProbes(session.namespace) };
  }

  async function untilNodeReady(name: string): Promise<void> {
    const ready = async () => (await kube().admin.core.readNode({ name })).status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
    await waitFor(ready, 30_000, `node ${name} to be Ready again`);
  }

  test('a session reaches READY with every object as specified; ending it removes the namespace, keeps the volume for the next session', async () => {
    const uma = await stack().client('Uma Ünicode');
    const workspace = stack().workspace();
    const session = await uma.getServer(workspace);
    const { namespace, volume, sessionId } = session;
    expect(session).toMatchObject({ phase: 'READY', agentAddress: `agent.${namespace}.svc:9443` });
    expect(namespace).toMatch(/^uma-nicode-rbs-[0-9a-f]{20}$/);
    // The proxy's first rsync fills the volume: no sync step between the agent's readiness and READY.
    const timeline = await (await stack().client('ops', { operator: true })).describeSessionTimeline(sessionId);
    expect(timeline.phases.map((p) => p.phase).slice(-2)).toEqual(['PROVISIONING_AGENT_READY', 'READY']);
    expect(timeline.steps.map((step) => step.activity)).not.toContain('syncWorkspace');
    const labels = sessionLabels(sessionId, volume);
    const { core, networking } = kube().admin;

    const ns = (await kube().namespace(namespace))!;
    expect(ns.metadata?.labels).toMatchObject({
      ...labels,
      'pod-security.kubernetes.io/enforce': 'restricted',
      'pod-security.kubernetes.io/warn': 'restricted',
    });
    expect(ns.metadata?.annotations?.['rbs.dev/user']).toBe('Uma Ünicode');

    const account = await core.readNamespacedServiceAccount({ name: 'agent', namespace });
    expect(account.automountServiceAccountToken).toBe(false);
    const policies = (await networking.listNamespacedNetworkPolicy({ namespace })).items;
    expect(policies.map((p) => p.metadata?.name).sort()).toEqual(['agent-egress', 'agent-ingress', 'default-deny']);
    expect(policies.find((p) => p.metadata?.name === 'default-deny')?.spec).toMatchObject({ podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
    expect(policies.find((p) => p.metadata?.name === 'agent-ingress')?.spec?.ingress?.[0]).toMatchObject({
      _from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'rbs-system' } } }, { ipBlock: { cidr: '10.9.0.0/16' } }],
      ports: [{ protocol: 'TCP', port: 9443 }],
    });
    // DNS only to the cluster's DNS pods; the internet in both families without private or link-local ranges.
    const egress = policies.find((p) => p.metadata?.name === 'agent-egress')?.spec?.egress;
    expect(egress?.[0].to).toEqual([
      { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } },
    ]);
    expect(egress?.[1].to?.map((peer) => peer.ipBlock?.except)).toEqual([expect.arrayContaining(['10.0.0.0/8', '169.254.0.0/16']), ['fc00::/7', 'fe80::/10']]);
    const quota = await core.readNamespacedResourceQuota({ name: 'session-quota', namespace });
    expect(quota.spec?.hard).toEqual({ 'limits.cpu': '1', 'limits.memory': '2Gi', 'requests.cpu': '1', 'requests.memory': '2Gi' });
    expect(quota.status?.used).toMatchObject({ 'limits.cpu': '1', 'requests.cpu': '500m' });
    const limits = await core.readNamespacedLimitRange({ name: 'session-limits', namespace });
    expect(limits.spec?.limits[0]).toMatchObject({ type: 'Container', _default: { cpu: '1', memory: '2Gi' }, defaultRequest: { cpu: '500m', memory: '1Gi' } });

    const claim = await core.readNamespacedPersistentVolumeClaim({ name: volume, namespace });
    expect(claim.metadata?.labels).toEqual(labels);
    expect(claim.spec).toMatchObject({ accessModes: ['ReadWriteMany'], storageClassName: TEST_BACKEND_CONFIG.storageClass });
    expect(claim.status?.phase).toBe('Bound');
    const secret = await core.readNamespacedSecret({ name: 'agent-tls', namespace });
    expect(secret.type).toBe('kubernetes.io/tls');
    expect(Object.keys(secret.data ?? {}).sort()).toEqual(['ca.crt', 'tls.crt', 'tls.key']);
    // The agent's certificate names the address the proxy dials.
    const certificate = Buffer.from(secret.data!['tls.crt'], 'base64').toString();
    expect(new X509Certificate(certificate).subjectAltName).toContain(`DNS:agent.${namespace}.svc`);

    const pod: V1Pod = await core.readNamespacedPod({ name: 'agent', namespace });
    expect(pod.metadata?.labels).toMatchObject({ ...labels, 'app.kubernetes.io/name': 'rbs-agent' });
    expect(pod.spec).toMatchObject({ serviceAccountName: 'agent', automountServiceAccountToken: false });
    expect(kube().controlPlane.nodes).toContain(pod.spec?.nodeName);
    expect(pod.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    const [container] = pod.spec!.containers;
    expect(container.securityContext).toMatchObject({
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(pod.spec?.securityContext?.seccompProfile).toEqual({ type: 'RuntimeDefault' });
    expect(container.readinessProbe?.grpc?.port).toBe(9444);
    expect(container.resources).toEqual({ requests: { cpu: '500m', memory: '1Gi' }, limits: { cpu: '1', memory: '2Gi' } });
    expect(container.volumeMounts).toEqual(
      expect.arrayContaining([
        { name: 'workspace', mountPath: '/workspace' },
        { name: 'tls', mountPath: '/etc/rbs/tls', readOnly: true },
      ]),
    );
    const service = await core.readNamespacedService({ name: 'agent', namespace });
    expect(service.spec).toMatchObject({ type: 'ClusterIP', selector: { 'app.kubernetes.io/name': 'rbs-agent' }, ports: [{ port: 9443, targetPort: 9443 }] });

    const [pv] = await persistentVolumesOf(volume);
    expect(pv.spec?.persistentVolumeReclaimPolicy).toBe('Retain');

    expect((await uma.endSession(sessionId)).phase).toBe('ENDED');
    expect(await kube().namespace(namespace)).toBeNull();
    expect((await persistentVolumesOf(volume)).map((v) => [v.metadata?.name, v.status?.phase])).toEqual([[pv.metadata?.name, 'Released']]);

    // The next session of the same user and workspace finds the same volume.
    const next = await uma.getServer(workspace);
    expect(next).toMatchObject({ phase: 'READY', namespace, volume });
    expect(next.sessionId).not.toBe(sessionId);
    const rebound = await core.readNamespacedPersistentVolumeClaim({ name: volume, namespace });
    expect(rebound.spec?.volumeName).toBe(pv.metadata?.name);
    expect(await persistentVolumesOf(volume)).toHaveLength(1);
    await uma.endSession(next.sessionId);
    expect(await kube().namespace(namespace)).toBeNull();
  });

  test('an agent pod deleted under a session, reported by its proxy, is replaced at once: the same GetServer returns READY', async () => {
    const kai = await stack().client('kai');
    const session = await kai.getServer(stack().workspace());
    const { core } = kube().admin;
    const before = await core.readNamespacedPod({ name: 'agent', namespace: session.namespace });
    const probes = recordProbes(session.namespace);
    await core.deleteNamespacedPod({ name: 'agent', namespace: session.namespace }); // evicted, or deleted by hand

    const next = await kai.getServer(session.workspace, { unreachableAgent: session.agentAddress });
    expect(next).toMatchObject({ sessionId: session.sessionId, phase: 'READY', agentAddress: session.agentAddress });
    // Gone (terminating or missing) is certain: one look, no second probe.
    expect(probes).toEqual([{ detail: expect.stringMatching(/the agent pod (is terminating|does not exist)/), gone: true }]);
    const after = await core.readNamespacedPod({ name: 'agent', namespace: session.namespace });
    expect(after.metadata?.uid).not.toBe(before.metadata?.uid);
    expect(after.metadata?.deletionTimestamp).toBeUndefined();
    expect(after.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    await kai.endSession(session.sessionId);
  });

  test('an agent whose node was deleted (its VM gone: no kubelet will ever update or confirm the deletion of its pod), reported by its proxy, is replaced at once on another node', async () => {
    const { client: lea, session, before, nodeName, node, probes } = await sessionOnNode('lea');
    const { core } = kube().admin;
    await core.deleteNode({ name: nodeName });
    try {
      // The pod still says Ready (what its kubelet last wrote), and would wait for its kubelet to go.
      const stale = await core.readNamespacedPod({ name: 'agent', namespace: session.namespace });
      expect(stale.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');

      const next = await lea.getServer(session.workspace, { unreachableAgent: session.agentAddress });
      expect(next).toMatchObject({ sessionId: session.sessionId, phase: 'READY' });
      expect(probes).toEqual([{ detail: expect.stringContaining(`its node ${nodeName} no longer exists`), gone: true }]);
      const after = await core.readNamespacedPod({ name: 'agent', namespace: session.namespace });
      expect(after.metadata?.uid).not.toBe(before.metadata?.uid);
      expect(after.spec?.nodeName).not.toBe(nodeName);
      await lea.endSession(session.sessionId);
    } finally {
      // The node back, as its kubelet would register it again: kwok takes it over by its annotation.
      const { name, labels, annotations } = node.metadata!;
      await core.createNode({ body: { metadata: { name, labels, annotations }, spec: node.spec, status: node.status } });
      await untilNodeReady(nodeName);
    }
  });

  test('an agent whose node has not been Ready for 30 s (cut off, its kubelet silent), reported by its proxy, is deleted without its kubelet and replaced on another node by a newer generation', async () => {
    const { client: nia, session, before, nodeName, node: original, probes } = await sessionOnNode('nia');
    const { core } = kube().admin;
    const unreachable = { key: 'node.kubernetes.io/unreachable', effect: 'NoSchedule' };
    try {
      // kwok stops playing its kubelet. The node lifecycle controller would mark the node Unknown
      // and taint it some 40 s later; here that is written as the controller would, 35 s ago.
      await retryOnConflict(async () => {
        const node = await core.readNode({ name: nodeName });
        delete node.metadata!.annotations!['kwok.x-k8s.io/node'];
        node.spec = { ...node.spec, taints: [...(node.spec?.taints ?? []), unreachable] };
        await core.replaceNode({ name: nodeName, body: node });
      });
      const since = new Date(Date.now() - 35_000);
      await retryOnConflict(async () => {
        const node = await core.readNode({ name: nodeName });
        node.status!.conditions = node.status!.conditions!.map((c) =>
          c.type === 'Ready'
            ? { ...c, status: 'Unknown', reason: 'NodeStatusUnknown', message: 'Kubelet stopped posting node status.', lastTransitionTime: since }
            : c,
        );
        await core.replaceNodeStatus({ name: nodeName, body: node });
      });
      const next = await nia.getServer(session.workspace, { unreachableAgent: session.agentAddress });
      expect(next).toMatchObject({ sessionId: session.sessionId, phase: 'READY' });
      expect(probes).toEqual([
        { detail: expect.stringMatching(new RegExp(`its node ${nodeName} has not been Ready for \\d+ s \\(Unknown, NodeStatusUnknown`)), gone: true },
      ]);
      const after = await core.readNamespacedPod({ name: 'agent', namespace: session.namespace });
      expect(after.metadata?.uid).not.toBe(before.metadata?.uid);
      expect(after.spec?.nodeName).not.toBe(nodeName);
      // The old agent, if it still runs, sees a newer claim on the volume and stops (volume-lease.ts).
      const generation = (pod: V1Pod) => Number(pod.spec!.containers[0].env!.find((e) => e.name === 'RBS_AGENT_GENERATION')!.value);
      expect(generation(after)).toBeGreaterThan(generation(before));
      await nia.endSession(session.sessionId);
    } finally {
      // Back as it was: kwok takes it over again by its annotation.
      await retryOnConflict(async () => {
        const node = await core.readNode({ name: nodeName });
        node.metadata!.annotations = original.metadata!.annotations;
        node.spec = { ...node.spec, taints: (node.spec?.taints ?? []).filter((t) => t.key !== unreachable.key) };
        await core.replaceNode({ name: nodeName, body: node });
      });
      await untilNodeReady(nodeName);
    }
  });

  test('the cleanup schedule removes a managed namespace without a live session and keeps live ones', async () => {
    const vic = await stack().client('vic');
    const live = await vic.getServer(stack().workspace());
    const backend = stack().worker.backend;
    const orphan = { namespace: 'orphan-rbs-0123456789ab', volume: 'orphan-vol-0123456789ab', sessionId: randomUUID(), user: 'nobody' };
    await backend.ensureNamespace(orphan);
    await backend.ensureVolume(orphan);

    await stack().temporal.schedule.getHandle(cleanupScheduleId(stack().config.temporal.taskQueue)).trigger();

    await waitFor(async () => (await kube().namespace(orphan.namespace)) === null, 90_000, 'the orphaned namespace to go');
    expect((await backend.listNamespaces()).map((n) => n.namespace)).toEqual([live.namespace]);
    expect((await vic.describeSession(live.sessionId)).phase).toBe('READY');
    await vic.endSession(live.sessionId);
  });
});
