/**
 * The route from laptops (helm/rbs agents.gateway): on a real apiserver with Gateway API's standard-channel CRDs, each
 * session gets a TLSRoute that the CRDs' own validation accepts, for the host its agent's certificate names, through
 * the chart's Gateway, whose listener admits routes from session namespaces only. A gateway that refuses the route
 * fails the session naming its reason. No gateway controller runs here: the tests write the route's status as one.
 */
import { randomUUID } from 'node:crypto';
import { CustomObjectsApi, KubernetesObjectApi } from '@kubernetes/client-node';
import type { AgentSpec, NamespaceSpec } from '../../lib/compute/backend';
import { AGENT, GATEWAY_API_GROUP, TLS_ROUTE_TYPE, type TlsRoute } from '../../lib/compute/kubernetes/objects';
import { routeRefusal } from '../../lib/compute/kubernetes/route';
import { placementFor } from '../../lib/naming';
import { TEST_GATEWAY, installTestGateway, testGatewayObjects, useKubeBackend } from './backend-fixture';
import { findObject } from './chart-render';
import { type Request, outcome, waitForPolicy } from './worker-identity';

const kube = useKubeBackend(undefined, { gateway: true });
const credentials = { caCertPem: 'CA PEM', certPem: 'CERT PEM', keyPem: 'KEY PEM' };
const GATEWAY = TEST_GATEWAY.config.gateway;
const wait = { deadlineMs: 30_000, onProgress: () => undefined };

function session(user: string): NamespaceSpec & AgentSpec {
  const { namespace, volume } = placementFor(`${user}-${randomUUID().slice(0, 8)}`, `/home/${user}/src`);
  return { namespace, volume, user, sessionId: randomUUID() };
}

const readRoute = (namespace: string) =>
  KubernetesObjectApi.makeApiClient(kube().controlPlane.kubeConfig).read<TlsRoute>({ ...TLS_ROUTE_TYPE, metadata: { name: AGENT.name, namespace } });

/** Writes the route's status as the gateway's controller would: `conditions` from Gateway GATEWAY. */
async function judgeRoute(namespace: string, conditions: Array<{ type: string; status: string; reason: string; message: string }>) {
  const route = await readRoute(namespace);
  const now = new Date().toISOString();
  const parentRef = { group: GATEWAY_API_GROUP, kind: 'Gateway', ...GATEWAY };
  const status = {
    parents: [
      { parentRef, controllerName: 'example.com/gateway', conditions: conditions.map((c) => ({ ...c, lastTransitionTime: now, observedGeneration: 1 })) },
    ],
  };
  await kube()
    .controlPlane.kubeConfig.makeApiClient(CustomObjectsApi)
    .replaceNamespacedCustomObjectStatus({
      group: GATEWAY_API_GROUP,
      version: 'v1',
      plural: 'tlsroutes',
      namespace,
      name: AGENT.name,
      body: { ...route, status },
    });
}

async function provision(spec: NamespaceSpec & AgentSpec) {
  const backend = kube().backend();
  await backend.ensureNamespace(spec);
  await backend.ensureVolume(spec);
  await backend.installAgentCredentials(spec, credentials);
  await backend.startAgent(spec);
  return backend;
}

test("each session's TLSRoute sends its host, the one its agent's certificate names, to its agent Service", async () => {
  const spec = session('alice');
  const backend = kube().backend();
  await backend.ensureNamespace(spec);
  const host = `${spec.namespace}.agents.rbs.test`;
  const route = await readRoute(spec.namespace);
  expect(route.spec).toEqual({
    parentRefs: [{ group: GATEWAY_API_GROUP, kind: 'Gateway', namespace: GATEWAY.namespace, name: GATEWAY.name }],
    hostnames: [host],
    rules: [{ backendRefs: [{ group: '', kind: 'Service', name: AGENT.name, port: AGENT.port, weight: 1 }] }],
  });
  expect(backend.agentTlsNames(spec.namespace).dnsNames).toContain(host);
});

/** The chart's gateway.yaml (the Gateway, and the policy on routes through it), installed by the first test. */
const chartObjects = testGatewayObjects();

test("the chart's Gateway is valid, listens for every session's host and admits routes from session namespaces only", async () => {
  const gateway = findObject<any>(chartObjects, 'Gateway', GATEWAY.name);
  await installTestGateway(kube().controlPlane, chartObjects);

  const [listener] = gateway.spec.listeners;
  expect(listener).toMatchObject({ hostname: '*.agents.rbs.test', protocol: 'TLS', tls: { mode: 'Passthrough' }, port: 443 });
  const spec = session('bob');
  await kube().backend().ensureNamespace(spec);
  const admits = (labels: Record<string, string> = {}) =>
    Object.entries(listener.allowedRoutes.namespaces.selector.matchLabels as Record<string, string>).every(([k, v]) => labels[k] === v);
  expect(admits((await kube().namespace(spec.namespace))!.metadata!.labels)).toBe(true);
  expect(admits((await kube().namespace('default'))!.metadata!.labels)).toBe(false);
  expect(listener.allowedRoutes.kinds).toEqual([{ group: GATEWAY_API_GROUP, kind: 'TLSRoute' }]);
});

test("nobody, not even a cluster admin in a namespace labelled as the release's, routes a session's host elsewhere", async () => {
  const victim = session('victim');
  await kube().backend().ensureNamespace(victim);
  const evil = `evil-${randomUUID().slice(0, 8)}`;
  const labels = (await kube().namespace(victim.namespace))!.metadata!.labels!;
  await kube().admin.core.createNamespace({ body: { metadata: { name: evil, labels } } });
  const admin = KubernetesObjectApi.makeApiClient(kube().controlPlane.kubeConfig);
  const policy = findObject(chartObjects, 'ValidatingAdmissionPolicy').metadata!.name!;
  const hijack =
    (hostnames: string[] | undefined, parent = { group: GATEWAY_API_GROUP, kind: 'Gateway', ...GATEWAY }): Request =>
    (api) =>
      api.create(
        {
          ...TLS_ROUTE_TYPE,
          metadata: { name: 'hijack', namespace: evil },
          spec: { parentRefs: [parent], ...(hostnames ? { hostnames } : {}), rules: [{ backendRefs: [{ name: 'trap', port: 443 }] }] },
        },
        undefined,
        'All',
      );
  await waitForPolicy(admin, policy, hijack([`${victim.namespace}.agents.rbs.test`]));
  const refusal = { admitted: false, code: 422, message: expect.stringContaining("routes exactly its own namespace's host") };
  for (const attempt of [[`${victim.namespace}.agents.rbs.test`], ['*.agents.rbs.test'], [`${evil}.agents.rbs.test`, `${victim.namespace}.agents.rbs.test`]]) {
    expect({ attempt, result: await outcome(hijack(attempt)(admin)) }).toEqual({ attempt, result: refusal });
  }
  // No hostnames would take the listener's *.<domain>, every session's host: TLSRoute v1 requires them.
  expect(await outcome(hijack(undefined)(admin))).toEqual({ admitted: false, code: 422, message: expect.stringContaining('spec.hostnames: Required value') });
  // Through another gateway, for a host of the agents' domain: refused too.
  const elsewhere = await outcome(
    hijack([`${victim.namespace}.agents.rbs.test`], { group: GATEWAY_API_GROUP, kind: 'Gateway', namespace: 'default', name: 'other' })(admin),
  );
  expect(elsewhere).toMatchObject({ admitted: false, code: 422 });
  // Its own namespace's host is all it can route.
  expect(await outcome(hijack([`${evil}.agents.rbs.test`])(admin))).toEqual({ admitted: true });
});

test('an agent whose route has no verdict yet is ready: gateway controllers write status when they can', async () => {
  const spec = session('carol');
  const backend = await provision(spec);
  await expect(backend.waitForAgent(spec, wait)).resolves.toBe(`${spec.namespace}.agents.rbs.test:443`);
});

test('a route deleted since the namespace was made is put back before the agent is reported ready', async () => {
  const spec = session('erin');
  const backend = await provision(spec);
  const admin = KubernetesObjectApi.makeApiClient(kube().controlPlane.kubeConfig);
  await admin.delete({ ...TLS_ROUTE_TYPE, metadata: { name: AGENT.name, namespace: spec.namespace } });
  await backend.waitForAgent(spec, wait);
  expect((await readRoute(spec.namespace)).spec.hostnames).toEqual([`${spec.namespace}.agents.rbs.test`]);
});

test('a session whose gateway refuses its route fails for good, naming the gateway and its reason', async () => {
  const spec = session('dave');
  const backend = await provision(spec);
  await judgeRoute(spec.namespace, [{ type: 'Accepted', status: 'False', reason: 'NotAllowedByListeners', message: 'no listener admits this namespace' }]);
  await expect(backend.waitForAgent(spec, wait)).rejects.toMatchObject({
    name: 'AgentStartError',
    reason: 'RouteRejected',
    message: expect.stringContaining(
      `Gateway ${GATEWAY.namespace}/${GATEWAY.name} (example.com/gateway) does not take the route: Accepted=False, NotAllowedByListeners: no listener admits this namespace`,
    ),
  });
});

describe('routeRefusal', () => {
  const route = (parents: unknown[]): TlsRoute & { status: any } => ({
    ...TLS_ROUTE_TYPE,
    metadata: { name: 'agent', namespace: 'ns' },
    spec: {} as any,
    status: { parents },
  });
  const ours = { group: GATEWAY_API_GROUP, kind: 'Gateway', ...GATEWAY };
  const refused = (type: string) => [{ type, status: 'False', reason: 'Why', message: 'because' }];

  test.each([
    ['no status', route([]), null],
    ['accepted', route([{ parentRef: ours, conditions: [{ type: 'Accepted', status: 'True' }] }]), null],
    ['refused by another Gateway', route([{ parentRef: { ...ours, name: 'other' }, conditions: refused('Accepted') }]), null],
    ['its Service not found (perhaps not yet: left alone)', route([{ parentRef: ours, conditions: refused('ResolvedRefs') }]), null],
    [
      'refused, an older generation of it',
      {
        ...route([{ parentRef: ours, conditions: [{ ...refused('Accepted')[0], observedGeneration: 1 }] }]),
        metadata: { name: 'agent', namespace: 'ns', generation: 2 },
      },
      null,
    ],
    [
      'refused, this generation',
      {
        ...route([{ parentRef: ours, conditions: [{ ...refused('Accepted')[0], observedGeneration: 2 }] }]),
        metadata: { name: 'agent', namespace: 'ns', generation: 2 },
      },
      /Accepted=False, Why: because/,
    ],
    [
      'refused, the parent named without defaults',
      route([{ parentRef: { name: GATEWAY.name, namespace: GATEWAY.namespace }, conditions: refused('Accepted') }]),
      /Accepted=False/,
    ],
  ])('%s', (_what, candidate, expected) => {
    const refusal = routeRefusal(candidate, GATEWAY);
    if (expected === null) expect(refusal).toBeNull();
    else expect(refusal).toMatch(expected);
  });
});
