/**
 * The agent image on a real node: the stock Bazel client builds through its proxy, the workflow, the Kubernetes
 * backend (as the chart's worker) and the agent pod, whose Bazel server runs inside the container. The pod is
 * built from the Dockerfile (scripts/install-node.sh), runs under Pod Security `restricted` with its own security
 * context, is Ready through the kubelet's gRPC probe, and keeps the workspace on a real mount. Suspended, the
 * session's pod goes; resumed, a new pod on the same volume builds warm. A laptop outside the cluster builds through a
 * real SNI-passthrough gateway (Traefik) that routes by the session's TLSRoute.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { status } from '@grpc/grpc-js';
import { X509Certificate } from 'node:crypto';
import { KubernetesObjectApi } from '@kubernetes/client-node';
import { identityFromUris } from '../../lib/pki/identity';
import { presentedCertificate } from '../harness/presented-certificate';
import { type ClusterNetwork, startClusterNetwork } from '../harness/cluster-network';
import { type SniGateway, TRAEFIK_CONTROLLER, startSniGateway } from '../harness/sni-gateway';
import { PAUSE_TEST_IMAGE } from '../harness/kube-node';
import { startStack, useStack } from '../harness/stack';
import { waitFor } from '../harness/wait';
import { type BazelWorkspace, workspaceOfNewUser } from '../data-path/fixture';
import { TEST_GATEWAY, installTestGateway, testGatewayObjects, useKubeBackend } from './backend-fixture';
import { DEFAULT_AGENT_ADDRESS_TEMPLATE } from '../../lib/compute/kubernetes/config';
import { AGENT, TLS_ROUTE_TYPE, type TlsRoute } from '../../lib/compute/kubernetes/objects';
import { MIN_AGENT_LEASE_MS, takeoverWaitMs } from '../../lib/agent-lease';
import { NODE_LOST_AFTER_MS } from '../../lib/compute/kubernetes/pod-status';

jest.setTimeout(300_000);

/** Bazel's summary when the genrule ran (not when its result came from the action cache). */
const EXECUTED = /processes?: .*\b1 (linux-sandbox|local|processwrapper-sandbox)\b/;

const kube = useKubeBackend(undefined, { realNode: true, gateway: true });
/** The route of every test here but the gateway's: the cluster's network, as a VPN gives (the chart's default). */
const IN_CLUSTER = { gateway: undefined, agentAddressTemplate: DEFAULT_AGENT_ADDRESS_TEMPLATE };
let network: ClusterNetwork | undefined;
beforeAll(async () => {
  network = await startClusterNetwork(kube().controlPlane.kubeConfig);
});
afterAll(() => network?.close());

// In a describe block, so that the stack stops (its afterAll runs) before the cluster does.
describe('a session on a real node', () => {
  const stack = useStack({ RBS_IDLE_TIMEOUT_MS: '15000' }, () => ({ backend: kube().backend(IN_CLUSTER) }));
  let ws: BazelWorkspace | undefined;
  afterAll(() => ws?.destroy());

  const agentPod = (namespace: string) => kube().admin.core.readNamespacedPod({ name: 'agent', namespace });

  test('the stock client builds through the agent pod; suspended and resumed onto the same volume, it builds warm', async () => {
    ws = await workspaceOfNewUser(stack(), 'dana', network!.env);
    const build = async () => {
      const result = await ws!.bazel(['build', ...ws!.buildOptions, '//:gen']);
      if (result.code !== 0) throw new Error(`bazel build exited with ${result.code}:\n${result.stderr}`);
      return result;
    };

    const first = await build();
    expect(first.stderr).toMatch(EXECUTED);
    expect(fs.readFileSync(path.join(ws.workspace, 'bazel-bin', 'gen.txt'), 'utf8')).toBe('hello\n');

    const [session] = (await stack().worker.store.list()).filter((s) => s.workspace === ws!.workspace);
    expect(session).toMatchObject({ phase: 'READY', agentAddress: `agent.${session.namespace}.svc:9443` });
    const namespace = await kube().admin.core.readNamespace({ name: session.namespace });
    expect(namespace.metadata?.labels?.['pod-security.kubernetes.io/enforce']).toBe('restricted');
    const pod = await agentPod(session.namespace);
    expect(pod.spec?.nodeName).toBe(kube().realNode!.name);
    expect(pod.spec?.containers[0].readinessProbe?.grpc).toBeDefined();
    expect(pod.status?.containerStatuses?.[0]).toMatchObject({ ready: true, restartCount: 0, state: { running: expect.anything() } });
    expect(network!.connections.length).toBeGreaterThan(0);
    expect(network!.connections.every((c) => c.startsWith(`${session.agentAddress} -> ${pod.status!.podIP}:`))).toBe(true);
    // The workspace is on the volume the kubelet mounted: the node's local directory holds the copy.
    const volumeDirs = fs.readdirSync(kube().realNode!.volumesDir);
    expect(volumeDirs).toHaveLength(1);
    expect(fs.readFileSync(path.join(kube().realNode!.volumesDir, volumeDirs[0], 'workspace', 'in.txt'), 'utf8')).toBe('hello\n');

    // Idle: suspended, the pod goes, the volume stays.
    await waitFor(async () => (await stack().worker.store.get(session.sessionId))?.phase === 'SUSPENDED', 60_000, 'idle suspend');
    await waitFor(
      () =>
        agentPod(session.namespace).then(
          () => false,
          () => true,
        ),
      60_000,
      'the agent pod to go',
    );

    // The next command resumes it: a new pod on the same volume, whose new Bazel server finds its action cache
    // there and runs nothing; then an edit is built.
    const second = await build();
    expect(second.stderr).not.toMatch(EXECUTED);
    const resumed = await agentPod(session.namespace);
    expect(resumed.metadata?.uid).not.toBe(pod.metadata?.uid);
    expect(resumed.spec?.nodeName).toBe(kube().realNode!.name);
    expect(fs.readdirSync(kube().realNode!.volumesDir)).toEqual(volumeDirs);
    fs.writeFileSync(path.join(ws.workspace, 'in.txt'), 'hello again\n');
    const third = await build();
    expect(third.stderr).toMatch(EXECUTED);
    expect(fs.readFileSync(path.join(ws.workspace, 'bazel-bin', 'gen.txt'), 'utf8')).toBe('hello again\n');
  });
});

describe('a laptop outside the cluster, through a real SNI-passthrough gateway', () => {
  const domain = TEST_GATEWAY.values['agents.gateway.domain'];
  let gateway: SniGateway | undefined;
  let outside: ClusterNetwork | undefined;
  beforeAll(async () => {
    gateway = await startSniGateway(kube().controlPlane, TEST_GATEWAY.values['agents.gateway.className'], 443);
    await installTestGateway(kube().controlPlane, testGatewayObjects());
    await gateway.programmed(TEST_GATEWAY.config.gateway);
    // The laptop's DNS has the agents' wildcard record, pointing at the gateway.
    outside = await startClusterNetwork(kube().controlPlane.kubeConfig, [{ domain, ip: gateway.ip }]);
  });
  // Routes by the gateway (the fixture's default with `gateway`).
  const stack = useStack({}, () => ({ backend: kube().backend() }));
  let ws: BazelWorkspace | undefined;
  afterAll(() => ws?.destroy());
  // After the stack's (jest runs afterAll hooks in their order): the session ends before its route goes.
  afterAll(async () => {
    await outside?.close();
    await gateway?.stop();
  });

  test("the stock client builds through the gateway, which routes the session's host by its TLSRoute to the agent pod", async () => {
    ws = await workspaceOfNewUser(stack(), 'hal', outside!.env);
    const result = await ws.bazel(['build', ...ws.buildOptions, '//:gen']);
    if (result.code !== 0) throw new Error(`bazel build exited with ${result.code}:\n${result.stderr}\nTraefik:\n${gateway!.logTail(40)}`);
    expect(fs.readFileSync(path.join(ws.workspace, 'bazel-bin', 'gen.txt'), 'utf8')).toBe('hello\n');

    const [session] = (await stack().worker.store.list()).filter((s) => s.workspace === ws!.workspace);
    expect(session.agentAddress).toBe(`${session.namespace}.${domain}:443`);
    // Every connection of the proxy went to the gateway: the host resolved by the wildcard record, nothing else.
    expect(outside!.connections.length).toBeGreaterThan(0);
    expect(outside!.connections.every((c) => c === `${session.agentAddress} -> ${gateway!.ip}:443`)).toBe(true);
    // The route's verdict is the real controller's: accepted by the chart's Gateway, its Service resolved.
    const route = await KubernetesObjectApi.makeApiClient(kube().controlPlane.kubeConfig).read<TlsRoute & { status?: any }>({
      ...TLS_ROUTE_TYPE,
      metadata: { name: AGENT.name, namespace: session.namespace },
    });
    // Passthrough: at the gateway, the session's host meets the agent's own certificate, for that host. A host of the
    // domain that no route has meets no RBS certificate at all.
    const ca = new X509Certificate(stack().ca.certPem);
    const met = await presentedCertificate(`${gateway!.ip}:443`, `${session.namespace}.${domain}`);
    expect(met.checkIssued(ca)).toBe(true);
    const uris = met.subjectAltName!.split(', ').flatMap((name) => (name.startsWith('URI:') ? [name.slice(4)] : []));
    expect(identityFromUris(uris)).toEqual({ kind: 'agent', sessionId: session.sessionId });
    expect(met.subjectAltName).toContain(`DNS:${session.namespace}.${domain}`);
    const stranger = await presentedCertificate(`${gateway!.ip}:443`, `nobody.${domain}`).catch(() => null);
    expect(stranger?.checkIssued(ca) ?? false).toBe(false);
    expect(route.status?.parents).toEqual([
      expect.objectContaining({
        controllerName: TRAEFIK_CONTROLLER,
        parentRef: expect.objectContaining(TEST_GATEWAY.config.gateway),
        conditions: expect.arrayContaining([
          expect.objectContaining({ type: 'Accepted', status: 'True' }),
          expect.objectContaining({ type: 'ResolvedRefs', status: 'True' }),
        ]),
      }),
    ]);
  });
});

/** The failed session's namespace is on its way out (the kwok suites wait for it to go) and its agent is gone. */
async function expectRemoved(namespace: string): Promise<void> {
  const left = await kube().namespace(namespace);
  expect(left === null || left.metadata?.deletionTimestamp !== undefined).toBe(true);
  expect(await kube().backend().listAgents()).toEqual([]);
}

// What the kubelet itself finds wrong with an image, which kwok cannot play.
test.each([
  ['an image the node cannot pull', 'localhost/rbs/agent:absent', /ImagePullBackOff: agent of session .* cannot pull image localhost\/rbs\/agent:absent: \w+/],
  [
    'an image that would run as root',
    PAUSE_TEST_IMAGE,
    /ContainerConfigError: agent of session .* cannot be created: CreateContainerConfigError: container has runAsNonRoot and image will run as root/,
  ],
])("%s: the session ends FAILED with the kubelet's reason, and nothing is left", async (_what, agentImage, reason) => {
  const stack = await startStack({}, { backend: kube().backend({ ...IN_CLUSTER, agentImage }) });
  try {
    const client = await stack.client('erin');
    await expect(client.getServer(stack.workspace())).rejects.toMatchObject({ code: status.FAILED_PRECONDITION, details: expect.stringMatching(reason) });
    const [failed] = await client.listSessions({ includeFinished: true });
    expect(failed).toMatchObject({ phase: 'FAILED', failureReason: expect.stringMatching(reason) });
    await expectRemoved(failed.namespace);
  } finally {
    await stack.stop();
  }
});

test("a volume the kubelet cannot mount: the session ends FAILED at its deadline, quoting the kubelet's warning", async () => {
  kube().provisioner.skipLocalDirectories = true;
  // A short deadline needs a short lease: the worker allows for a replacement's wait on the volume (lib/agent-lease.ts).
  const stack = await startStack({ RBS_AGENT_READY_TIMEOUT_MS: '16000' }, { backend: kube().backend({ ...IN_CLUSTER, agentLeaseMs: MIN_AGENT_LEASE_MS }) });
  try {
    const client = await stack.client('fay');
    const reason = /Timeout: agent of session .* not ready after 16000 ms: .*; last warning: FailedMount: .*does not exist/;
    await expect(client.getServer(stack.workspace())).rejects.toMatchObject({ code: status.FAILED_PRECONDITION, details: expect.stringMatching(reason) });
    const [failed] = await client.listSessions({ includeFinished: true });
    await expectRemoved(failed.namespace);
  } finally {
    kube().provisioner.skipLocalDirectories = false;
    await stack.stop();
  }
});

/** However the node dies, each command ends within this. */
const NODE_LOSS_COMMAND_BOUND_MS = 180_000;
/** The agents' lease here, so that a replacement's wait on the volume fits the short deadline below. */
const NODE_LOSS_LEASE_MS = MIN_AGENT_LEASE_MS;

// Last: the node is down for a while.
test('the node dies mid-session: each command ends within its bound, saying why; once the node is back, a new agent takes the volume over and builds', async () => {
  const stack = await startStack({ RBS_AGENT_READY_TIMEOUT_MS: '20000' }, { backend: kube().backend({ ...IN_CLUSTER, agentLeaseMs: NODE_LOSS_LEASE_MS }) });
  const ws = await workspaceOfNewUser(stack, 'gus', network!.env);
  const node = kube().realNode!;
  let down = false;
  const build = () => ws.bazel(['build', ...ws.buildOptions, '//:gen']);
  const sessionsOfWorkspace = async () =>
    (await stack.worker.store.list()).filter((s) => s.workspace === ws.workspace).sort((a, b) => a.createdAtMs - b.createdAtMs);
  const failedSessions = async () => (await sessionsOfWorkspace()).filter((s) => s.phase === 'FAILED').length;
  const boundedBuild = async (when: string) => {
    const failedBefore = await failedSessions();
    const started = Date.now();
    const result = await Promise.race([build(), new Promise<null>((resolve) => setTimeout(resolve, NODE_LOSS_COMMAND_BOUND_MS, null))]);
    if (!result) throw new Error(`the command ${when} hung: still running after ${NODE_LOSS_COMMAND_BOUND_MS} ms`);
    console.log(`node loss: the command ${when} ended with ${result.code} after ${Date.now() - started} ms:\n${result.stderr}`);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('RBS proxy: the command failed: ');
    // A session that could not replace the agent its proxy reported is the command's answer: no second one is tried.
    expect((await failedSessions()) - failedBefore).toBeLessThanOrEqual(1);
    return result;
  };
  try {
    expect((await build()).code).toBe(0);
    const [first] = await sessionsOfWorkspace();

    await node.crash();
    down = true;
    fs.writeFileSync(path.join(ws.workspace, 'in.txt'), 'after the node came back\n');

    // At once: the control plane has not noticed yet, and the pod's last status still says Ready. Whichever the
    // command met first: the agent that does not answer, or (on a slow machine) the session that could not place a
    // new agent (the node holds the volume), which says why.
    const early = await boundedBuild('just after the node died');
    expect(early.stderr).toMatch(/did not answer/);
    const latest = (await sessionsOfWorkspace()).at(-1)!;
    const why = latest.phase === 'FAILED' ? latest.failureReason!.replace(/^agent restart failed: /, '') : `${latest.agentAddress}: no connection within`;
    expect(early.stderr).toContain(why);

    // Once the node counts as lost (silent past its grace, then NODE_LOST_AFTER_MS more): its agent is replaced, and
    // the replacement cannot be placed, since the node holds the volume. The session ends FAILED, saying so.
    await waitFor(
      async () => {
        const ready = (await kube().admin.core.readNode({ name: node.name })).status?.conditions?.find((c) => c.type === 'Ready');
        return ready?.status === 'Unknown' && Date.now() - new Date(ready.lastTransitionTime!).getTime() > NODE_LOST_AFTER_MS;
      },
      120_000,
      `node ${node.name} lost`,
    );
    const late = await boundedBuild('once the node counted as lost');
    expect(late.stderr).toMatch(/FAILED_PRECONDITION: session .* failed: Unschedulable: agent of session .* not scheduled: /);
    // The scheduler only counts nodes: the reason also names the one node the volume is on, and why it is out.
    expect(late.stderr).toContain(`its volume ${first.volume} can only be mounted on node ${node.name}, and node ${node.name} has not been Ready for `);
    const failed = (await sessionsOfWorkspace()).find((s) => s.sessionId === first.sessionId)!;
    expect(failed).toMatchObject({ phase: 'FAILED', failureReason: expect.stringMatching(/^agent restart failed: Unschedulable: /) });

    // Back: a new session's agent finds the lease of the old one, which it cannot tell is dead, waits it out, and builds.
    await node.restart();
    down = false;
    const after = await build();
    if (after.code !== 0) throw new Error(`the first build after the node came back exited with ${after.code}:\n${after.stderr}`);
    expect(fs.readFileSync(path.join(ws.workspace, 'bazel-bin', 'gen.txt'), 'utf8')).toBe('after the node came back\n');
    const [served] = (await sessionsOfWorkspace()).filter((s) => s.phase === 'READY');
    const pod = await kube().admin.core.readNamespacedPod({ name: 'agent', namespace: served.namespace });
    expect(pod.spec?.nodeName).toBe(node.name);
    const log = await kube().admin.core.readNamespacedPodLog({ name: 'agent', namespace: served.namespace, container: 'agent' });
    expect(log).toMatch(new RegExp(`taking the volume over from agent generation \\d+ .*: waiting ${takeoverWaitMs(NODE_LOSS_LEASE_MS)} ms`));
  } finally {
    if (down) await node.restart(); // so that the session's agent can be stopped
    ws.destroy();
    await stack.stop();
  }
});
