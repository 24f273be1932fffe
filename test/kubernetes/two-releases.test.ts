/**
 * Two RBS releases in one cluster, each with its own worker as the chart makes it (ServiceAccount identity,
 * ClusterRole, admission policy): each one's cleanup leaves the other's namespaces, agents and volumes alone, also
 * where both serve the same user and workspace, whose namespace and volume then have the same names in both.
 */
import { randomUUID } from 'node:crypto';
import type { AgentSpec, NamespaceSpec } from '../../lib/compute/backend';
import type { KubernetesBackend } from '../../lib/compute/kubernetes/backend';
import { placementFor } from '../../lib/naming';
import { cleanupScheduleId } from '../../services/worker/cleanup-schedule';
import { useStack } from '../harness/stack';
import { waitFor } from '../harness/wait';
import { TEST_RELEASE, useKubeBackend } from './backend-fixture';
import type { ChartRelease } from './chart-render';

const OTHER: ChartRelease = { name: 'rbs-b', namespace: 'rbs-b-system' };
const kube = useKubeBackend([TEST_RELEASE, OTHER]);

const credentials = { caCertPem: 'CA PEM', certPem: 'CERT PEM', keyPem: 'KEY PEM' };
const noProgress = () => undefined;

function session(user: string, workspace = `/home/${user}/src`): NamespaceSpec & AgentSpec {
  return { ...placementFor(user, workspace), user, sessionId: randomUUID() };
}

/** A session with its agent ready, so that its volume is labelled and retained. */
async function running(backend: KubernetesBackend, spec: NamespaceSpec & AgentSpec): Promise<void> {
  await backend.ensureNamespace(spec);
  await backend.ensureVolume(spec);
  await backend.installAgentCredentials(spec, credentials);
  await backend.startAgent(spec);
  await backend.waitForAgent(spec, { deadlineMs: 30_000, onProgress: noProgress });
}

/** Names of the namespaces, agent pods and PVs that exist now, whoever made them. */
async function everything() {
  const { core } = kube().admin;
  return {
    namespaces: (await core.listNamespace()).items.map((n) => n.metadata!.name!),
    agents: (await core.listPodForAllNamespaces()).items.map((p) => `${p.metadata!.namespace}/${p.metadata!.name}`),
    volumes: (await core.listPersistentVolume()).items.map((v) => v.metadata!.name!),
  };
}

async function volumeOf(volume: string, release: string): Promise<string> {
  const { items } = await kube().admin.core.listPersistentVolume({ labelSelector: `rbs.dev/volume=${volume},rbs.dev/release=${release}` });
  if (items.length !== 1) throw new Error(`expected one PV of volume ${volume} of release ${release}, found ${items.length}`);
  return items[0].metadata!.name!;
}

// In a describe block, so that the stack (release rbs's control plane) stops before the cluster does.
describe('two releases in one cluster', () => {
  const stack = useStack({}, () => ({ backend: kube().backend() }));

  test("release rbs's scheduled cleanup leaves release rbs-b's sessions, agents and volumes alone", async () => {
    const b = kube().backend({ release: OTHER.name });
    const live = session('bea');
    await running(b, live);
    const ended = session('ben');
    await running(b, ended);
    await b.deleteNamespace(ended.namespace); // its volume stays, Released and retained
    const kept = [await volumeOf(live.volume, OTHER.name), await volumeOf(ended.volume, OTHER.name)];
    // An orphan of release rbs (no session): what its cleanup is for.
    const orphan = session('orphan');
    await kube().backend().ensureNamespace(orphan);

    await stack().temporal.schedule.getHandle(cleanupScheduleId(stack().config.temporal.taskQueue)).trigger();
    await waitFor(async () => (await kube().namespace(orphan.namespace)) === null, 90_000, "release rbs's orphaned namespace to go");

    const now = await everything();
    expect(now.namespaces).toContain(live.namespace);
    expect(now.agents).toContain(`${live.namespace}/agent`);
    expect(now.volumes).toEqual(expect.arrayContaining(kept));
    expect((await b.listNamespaces()).map((n) => n.namespace)).toEqual([live.namespace]);
    expect(await kube().backend().listNamespaces()).toEqual([]);
    await b.deleteNamespace(live.namespace);
  });

  test("release rbs-b's cleanup leaves release rbs's session alone, though it is the same user's same workspace", async () => {
    const a = kube().backend();
    const b = kube().backend({ release: OTHER.name });
    const sam = await stack().client('sam');
    const workspace = stack().workspace();
    const ours = await sam.getServer(workspace);
    const pv = await volumeOf(ours.volume, TEST_RELEASE.name);
    const spec = { ...session('sam', workspace), sessionId: randomUUID() };
    expect({ namespace: spec.namespace, volume: spec.volume }).toEqual({ namespace: ours.namespace, volume: ours.volume });

    // Release rbs-b's cleanup sees none of release rbs's, and could not remove them if it tried.
    expect(await b.listNamespaces()).toEqual([]);
    expect(await b.listAgents()).toEqual([]);
    await expect(b.deleteNamespace(ours.namespace)).rejects.toThrow(`namespace ${ours.namespace} is not managed by rbs release rbs-b`);
    await b.deleteVolume(ours.volume); // no volume of that name in release rbs-b: nothing to delete
    // Nor does rbs-b's session for the same user and workspace take over the namespace.
    await expect(b.ensureNamespace(spec)).rejects.toThrow(/is not managed by rbs release rbs-b/);

    const now = await everything();
    expect(now.namespaces).toContain(ours.namespace);
    expect(now.agents).toContain(`${ours.namespace}/agent`);
    expect(now.volumes).toContain(pv);
    expect((await a.listAgents()).map((agent) => agent.sessionId)).toEqual([ours.sessionId]);
    expect((await sam.describeSession(ours.sessionId)).phase).toBe('READY');
    await sam.endSession(ours.sessionId);
  });
});
