/**
 * The helm chart (helm/rbs): it lints and renders; what it renders agrees with the code (the settings lib/config.ts
 * reads, ports, entry points, the CA where lib/pki/ca.ts loads it, the backend's BACKEND_RULES); and on a real
 * apiserver every object passes a server-side dry-run, an install's pods pass Pod Security `restricted`, and
 * impersonating its ServiceAccounts shows that the worker can do what the backend needs and no more, and the
 * orchestrator nothing of it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  AuthorizationV1Api,
  CoreV1Api,
  KubernetesObjectApi,
  loadYaml,
  type KubernetesObject,
  type V1ClusterRole,
  type V1ClusterRoleBinding,
  type V1ConfigMap,
  type V1Deployment,
  type V1Ingress,
  type V1PolicyRule,
  type V1ResourceAttributes,
  type V1Secret,
  type V1Service,
  type V1ServiceAccount,
  type V1ValidatingAdmissionPolicy,
  type V1ValidatingAdmissionPolicyBinding,
} from '@kubernetes/client-node';
import { AGENT, LABEL, POD_SECURITY, releaseLabels } from '../../lib/compute/kubernetes/objects';
import { BACKEND_RULES, GATEWAY_RULES } from '../../lib/compute/kubernetes/permissions';
import { homePaths, loadConfig } from '../../lib/config';
import { repoRoot } from '../../lib/local/tools';
import { CertificateAuthority } from '../../lib/pki/ca';
import { ALL_SEARCH_ATTRIBUTES } from '../../lib/temporal/search-attributes';
import { configUse } from '../deploy/config-env';
import { otlpTracesEndpoint } from '../../lib/tracing/tracing';
import { installGatewayApi } from '../harness/gateway-api';
import { useKubeControlPlane } from '../harness/kube-control-plane';
import { waitFor } from '../harness/wait';
import { CHART, NAMESPACE, PRODUCTION_VALUES, RELEASE, chartFixture, findObject, type ChartFixture } from './chart-render';

const COMPONENTS = ['orchestrator', 'worker'] as const;
const pick = (record: Record<string, string>, keys: string[]) => Object.fromEntries(keys.map((k) => [k, record[k]]));
const serviceAccountName = (component: string) => `${RELEASE}-${component}`;
/** A session namespace, as the backend names them. */
const SESSION_NAMESPACE = 'alice-rbs-0123abcd';

let chart: ChartFixture;
let objects: KubernetesObject[];
beforeAll(async () => {
  chart = await chartFixture();
  objects = chart.render();
});
afterAll(() => chart?.remove());

const deployment = (component: string) => findObject<V1Deployment>(objects, 'Deployment', `${RELEASE}-${component}`);
const container = (component: string) => deployment(component).spec!.template.spec!.containers[0];
const settings = () => configUse(findObject<V1ConfigMap>(objects, 'ConfigMap').data ?? {});

describe('helm/rbs', () => {
  test('passes helm lint --strict', () => {
    const result = chart.helm(['lint', '--strict', CHART, ...chart.valueArgs]);
    expect({ status: result.status, output: result.stdout + result.stderr }).toEqual({ status: 0, output: expect.stringContaining('0 chart(s) failed') });
  });

  test('stops naming every required value that is missing', () => {
    const result = chart.helm(['template', RELEASE, CHART]);
    expect(result.status).not.toBe(0);
    for (const name of ['image.repository', 'agents.image.repository', 'temporal.address', 'spanner.projectId', 'spanner.instanceId', 'ca.existingSecret']) {
      expect(result.stderr).toContain(name);
    }
  });

  test('tells operators to register the search attributes the session workflows set, each as a Keyword', () => {
    const install = chart.helm(['install', RELEASE, CHART, '--namespace', NAMESPACE, '--dry-run=client', ...chart.valueArgs]);
    expect({ status: install.status, stderr: install.stderr }).toEqual({ status: 0, stderr: '' });
    const command = /temporal operator search-attribute create((?:\\\n|.)*)/.exec(install.stdout)?.[1] ?? '';
    const pairs = [...command.matchAll(/--name (\S+) --type (\S+)/g)].map(([, name, type]) => `${name}=${type}`);
    expect(pairs.sort()).toEqual(ALL_SEARCH_ATTRIBUTES.map((key) => `${key.name}=Keyword`).sort());
  });

  test('keeps key material out of the defaults in values.yaml', () => {
    const text = fs.readFileSync(path.join(CHART, 'values.yaml'), 'utf8');
    expect(loadYaml<{ ca: Record<string, string> }>(text).ca).toEqual({ existingSecret: '', certificate: '', key: '' });
    expect(text).not.toMatch(/PRIVATE KEY|BEGIN CERTIFICATE/);
  });

  test('sets only RBS_* variables lib/config.ts reads, for the Spanner store and the Kubernetes backend', () => {
    const { config, unread } = settings();
    expect(unread).toEqual([]);
    expect(config.store).toEqual({ kind: 'spanner', projectId: 'rbs-test', instanceId: 'rbs', databaseId: 'rbs' });
    expect(config.temporal.address).toBe(PRODUCTION_VALUES.temporal.address);
    if (config.backend.kind !== 'kubernetes') throw new Error(`backend is ${config.backend.kind}, not kubernetes`);
    expect(config.backend.kubernetes.agentImage).toBe('registry.example/rbs-agent:test');
    // Every label and selector of the worker's objects carries the release.
    expect(config.backend.kubernetes.release).toBe(RELEASE);
    // The worker probes agents, so its namespace is admitted next to the configured ranges.
    expect(config.backend.kubernetes.ingress).toEqual({ namespaceLabels: { 'kubernetes.io/metadata.name': NAMESPACE }, cidrs: ['10.8.0.0/16'] });
    expect(config.backend.filestore).toBeNull();
  });

  test("passes the volumes' settings (class, agents' lease, Filestore), when given, to lib/config.ts", () => {
    const filestore = ['project=rbs-test', 'region=us-central1', 'tier=ZONAL', 'quotaGib=10240'].map((v) => `agents.filestore.${v}`);
    const rendered = chart.render([...chart.valueArgs, '--set', ['agents.storageClass=rbs-zonal', 'agents.leaseMs=60000', ...filestore].join(',')]);
    const { config, unread } = configUse(findObject<V1ConfigMap>(rendered, 'ConfigMap').data ?? {});
    expect(unread).toEqual([]);
    expect(config.backend).toMatchObject({
      kubernetes: { storageClass: 'rbs-zonal', agentLeaseMs: 60000 },
      filestore: { project: 'rbs-test', region: 'us-central1', tier: 'ZONAL', quotaGib: 10240 },
    });
  });

  test('passes the login, certificate lifetimes and per-user limits, when given, to lib/config.ts', () => {
    const values = [
      'login.oidc.issuer=https://login.example.com',
      'login.oidc.clientId=rbs-cli',
      'login.oidc.allowedDomains={example.com,example.org}',
      'login.oidc.operatorGroup=rbs-operators',
      'certificates.proxyValidityMs=3600000',
      'limits.activeSessions=3',
      'limits.watchStreams=4',
    ];
    const rendered = chart.render([...chart.valueArgs, '--set', values.join(',')]);
    const { config, unread } = configUse(findObject<V1ConfigMap>(rendered, 'ConfigMap').data ?? {});
    expect(unread).toEqual([]);
    expect(config.oidc).toMatchObject({
      issuer: 'https://login.example.com',
      clientId: 'rbs-cli',
      allowedDomains: ['example.com', 'example.org'],
      operatorGroup: 'rbs-operators',
    });
    expect(config.certificates.proxyValidityMs).toBe(3600000);
    expect(config.limits).toMatchObject({ activeSessions: 3, watchStreams: 4 });
    expect(settings().config.oidc).toBeNull(); // none unless asked for
  });

  test("passes the cluster's DNS of the agents' NetworkPolicy, when given, to lib/config.ts", () => {
    const dns = ['namespaceLabels.name=dns', 'podLabels.app=coredns', 'cidrs={169.254.20.10/32}'].map((v) => `agents.dns.${v}`);
    const rendered = chart.render([...chart.valueArgs, '--set', dns.join(',')]);
    const { config, unread } = configUse(findObject<V1ConfigMap>(rendered, 'ConfigMap').data ?? {});
    expect(unread).toEqual([]);
    expect(config.backend).toMatchObject({
      kubernetes: { dns: { namespaceLabels: { name: 'dns' }, podLabels: { app: 'coredns' }, cidrs: ['169.254.20.10/32'] } },
    });
  });

  test("announces the orchestrator's and the worker's metrics port for scraping, and passes who may scrape agents to lib/config.ts", () => {
    for (const component of COMPONENTS) {
      expect(deployment(component).spec!.template.metadata!.annotations).toMatchObject({
        'prometheus.io/scrape': 'true',
        'prometheus.io/port': '9464',
        'prometheus.io/path': '/metrics',
      });
      expect(container(component).ports).toContainEqual({ name: 'metrics', containerPort: 9464, protocol: 'TCP' });
    }
    expect(settings().config.metrics).toEqual({ orchestrator: '0.0.0.0:9464', worker: '0.0.0.0:9464' });
    const rendered = chart.render([...chart.valueArgs, '--set', 'metrics.scraperNamespaceLabels.name=monitoring']);
    const { config, unread } = configUse(findObject<V1ConfigMap>(rendered, 'ConfigMap').data ?? {});
    expect(unread).toEqual([]);
    expect(config.backend).toMatchObject({ kubernetes: { metricsScrapers: { name: 'monitoring' } } });
  });

  test('exports no traces by default; given a collector, the services export to it and agents may reach it (lib/tracing, lib/config.ts)', () => {
    const data = () => findObject<V1ConfigMap>(objects, 'ConfigMap').data ?? {};
    expect(otlpTracesEndpoint(data())).toBeNull();
    expect(settings().config.backend).not.toHaveProperty('kubernetes.tracesCollector');
    const values = [
      'tracing.otlpEndpoint=http://otel.monitoring.svc:4318',
      'tracing.agents.endpoint=http://otel.monitoring.svc:4318/v1/traces',
      'tracing.agents.collectorNamespaceLabels.name=monitoring',
      'tracing.agents.collectorPodLabels.app=otel',
    ];
    const rendered = findObject<V1ConfigMap>(chart.render([...chart.valueArgs, '--set', values.join(',')]), 'ConfigMap').data ?? {};
    expect(otlpTracesEndpoint(rendered)).toBe('http://otel.monitoring.svc:4318/v1/traces');
    const { config, unread } = configUse(rendered);
    expect(unread).toEqual([]);
    expect(config.backend).toMatchObject({
      kubernetes: {
        tracesCollector: {
          endpoint: 'http://otel.monitoring.svc:4318/v1/traces',
          namespaceLabels: { name: 'monitoring' },
          podLabels: { app: 'otel' },
          port: 4318,
        },
      },
    });
  });

  describe('with a route from laptops (agents.gateway)', () => {
    const GATEWAY_VALUES = [
      'agents.gateway.enabled=true',
      'agents.gateway.domain=agents.example.com',
      'agents.gateway.className=gke-l7-regional-external-managed',
    ];
    const withGateway = () => chart.render([...chart.valueArgs, '--set', GATEWAY_VALUES.join(',')]);

    test("tells the worker its Gateway and the agents' host, which lib/config.ts reads", () => {
      const rendered = withGateway();
      const { config, unread } = configUse(findObject<V1ConfigMap>(rendered, 'ConfigMap').data ?? {});
      expect(unread).toEqual([]);
      const gateway = findObject(rendered, 'Gateway');
      expect(config.backend).toMatchObject({
        kubernetes: { gateway: { namespace: NAMESPACE, name: gateway.metadata?.name }, agentAddressTemplate: '{namespace}.agents.example.com:443' },
      });
      expect(settings().config.backend).not.toHaveProperty('kubernetes.gateway'); // none unless asked for
      expect(objects.filter((o) => o.kind === 'Gateway')).toEqual([]);
    });

    test('gives the worker GATEWAY_RULES too, and its admission policy a rule for TLSRoutes', () => {
      const rendered = withGateway();
      expect(findObject<V1ClusterRole>(rendered, 'ClusterRole').rules).toEqual([...BACKEND_RULES, ...GATEWAY_RULES]);
      const policy = findObject<V1ValidatingAdmissionPolicy>(rendered, 'ValidatingAdmissionPolicy', `rbs-worker-${RELEASE}`);
      expect(JSON.parse(policy.spec!.variables!.find((v) => v.name === 'kinds')!.expression)).toContain('gateway.networking.k8s.io/tlsroutes');
      expect(policy.spec!.validations!.map((v) => v.expression).join('\n')).toContain("'.agents.example.com'");
    });

    test('stops without a domain or a class, and when agents.address is set too', () => {
      const missing = chart.helm(['template', RELEASE, CHART, ...chart.valueArgs, '--set', 'agents.gateway.enabled=true,agents.clients.cidrs=null']);
      expect(missing.status).not.toBe(0);
      expect(missing.stderr).toContain('agents.gateway.domain');
      expect(missing.stderr).toContain('agents.gateway.className');
      expect(missing.stderr).toContain("agents.clients.namespaceLabels or agents.clients.cidrs (where the gateway's proxies connect from");
      const both = chart.helm([
        'template',
        RELEASE,
        CHART,
        ...chart.valueArgs,
        '--set',
        [...GATEWAY_VALUES, 'agents.address=agent.{namespace}.svc:9443'].join(','),
      ]);
      expect({ status: both.status, stderr: both.stderr }).toEqual({
        status: 1,
        stderr: expect.stringContaining('agents.address and agents.gateway.enabled exclude each other'),
      });
    });
  });

  test("confines the worker's ServiceAccount with an admission policy whose labels, names and kinds are the backend's", () => {
    const policy = findObject<V1ValidatingAdmissionPolicy>(objects, 'ValidatingAdmissionPolicy');
    const variable = (name: string) => JSON.parse(policy.spec!.variables!.find((v) => v.name === name)!.expression) as unknown;
    expect(variable('releaseLabels')).toEqual(releaseLabels(RELEASE));
    expect(variable('podSecurity')).toEqual(pick(POD_SECURITY, ['pod-security.kubernetes.io/enforce', 'pod-security.kubernetes.io/enforce-version']));
    // The class the worker is told to claim, and the only one the policy lets it claim.
    expect(settings().config.backend).toMatchObject({ kubernetes: { storageClass: variable('storageClass') } });
    // What the worker may write: a kind it may only read (nodes) is never admitted for a write.
    const writes = BACKEND_RULES.filter((r) => r.verbs.some((verb) => ['create', 'patch', 'update', 'delete'].includes(verb)));
    const kinds = [...new Set(writes.flatMap((r) => r.apiGroups!.flatMap((g) => r.resources!.map((k) => `${g}/${k}`))))];
    expect(variable('kinds')).toEqual(kinds);
    expect(kinds).not.toContain('/nodes');
    const validations = policy.spec!.validations!.map((v) => v.expression).join('\n');
    for (const key of [LABEL.sessionId, LABEL.volume, LABEL.release]) expect(validations).toContain(`'${key}'`);
    expect(validations).toContain(`== '${AGENT.tlsSecret}'`);
    expect(policy.spec?.matchConditions).toEqual([
      { name: 'is-the-worker', expression: `request.userInfo.username == 'system:serviceaccount:${NAMESPACE}:${serviceAccountName('worker')}'` },
    ]);
    expect(policy.spec?.failurePolicy).toBe('Fail');
    const binding = findObject<V1ValidatingAdmissionPolicyBinding>(objects, 'ValidatingAdmissionPolicyBinding');
    expect(binding.spec).toEqual({ policyName: policy.metadata?.name, validationActions: ['Deny'] });
  });

  test('starts the orchestrator and the worker from entry points the build produces', () => {
    for (const component of COMPONENTS) {
      const main = `dist/services/${component}/main.js`;
      expect(container(component).args).toEqual(['node', main]);
      expect(fs.existsSync(path.join(repoRoot(), main))).toBe(true);
    }
  });

  test('serves GetServer where the orchestrator listens, through its Service and a TLS-passthrough Ingress', () => {
    const listenPort = Number(settings().config.orchestrator.listen.split(':').pop());
    expect(container('orchestrator').ports).toContainEqual({ name: 'grpc', containerPort: listenPort, protocol: 'TCP' });
    expect(container('orchestrator').readinessProbe?.tcpSocket?.port).toBe('grpc');
    const service = findObject<V1Service>(objects, 'Service');
    expect(service.spec?.selector).toEqual(deployment('orchestrator').spec?.selector.matchLabels);
    expect(service.spec?.ports?.map((p) => p.targetPort)).toEqual(['grpc']);
    const ingress = findObject<V1Ingress>(objects, 'Ingress');
    expect(ingress.metadata?.annotations?.['nginx.ingress.kubernetes.io/ssl-passthrough']).toBe('true');
    expect(ingress.spec?.tls).toBeUndefined(); // the orchestrator terminates mTLS itself
    const rule = ingress.spec?.rules?.[0];
    expect(rule?.host).toBe('rbs.example.com');
    expect(rule?.http?.paths[0].backend.service).toEqual({ name: service.metadata?.name, port: { name: 'grpc' } });
  });

  test('mounts the CA key into the signer beside each service, where lib/pki/ca.ts loads it, and never into the service', async () => {
    const { pki } = homePaths(settings().config.home);
    const secret = findObject<V1Secret>(objects, 'Secret');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-mounted-ca-'));
    try {
      for (const component of COMPONENTS) {
        const pod = deployment(component).spec!.template.spec!;
        const caVolumes = (pod.volumes ?? []).filter((v) => v.secret?.secretName === secret.metadata?.name).map((v) => v.name);
        expect(caVolumes).toHaveLength(1);
        // The service's own containers do not mount it; the signer sidecar does, read-only.
        for (const c of pod.containers) expect(c.volumeMounts?.filter((m) => caVolumes.includes(m.name))).toEqual([]);
        const signer = pod.initContainers!.find((c) => c.name === 'signer')!;
        expect(signer.restartPolicy).toBe('Always');
        const mount = signer.volumeMounts!.find((m) => caVolumes.includes(m.name))!;
        expect(mount).toMatchObject({ mountPath: pki, readOnly: true });
        const volume = pod.volumes!.find((v) => v.name === mount.name);
        // What the kubelet would write: each item's key as its path, readable by the pod's group only.
        for (const item of volume?.secret?.items ?? []) {
          fs.writeFileSync(path.join(dir, item.path), Buffer.from(secret.data?.[item.key] ?? '', 'base64'));
        }
        expect(volume?.secret?.defaultMode).toBe(0o440);
        const ca = await CertificateAuthority.loadOrCreate(dir);
        expect(ca.certPem).toBe(chart.ca.certPem);
        // The signer publishes the service's certificate where the service reads it, and signs for it on loopback.
        const env = Object.fromEntries(signer.env!.map((e) => [e.name, e.value]));
        const signerConfig = loadConfig(env).signer;
        expect(signerConfig).toMatchObject({ publishFor: component, serviceTlsDir: settings().config.signer.serviceTlsDir });
        expect(settings().config.signer.address).toBe(signerConfig.listen);
        const shared = signer.volumeMounts!.find((m) => m.mountPath === signerConfig.serviceTlsDir)!;
        expect(container(component).volumeMounts).toContainEqual({ name: shared.name, mountPath: signerConfig.serviceTlsDir, readOnly: true });
        expect(signer.args).toEqual(['node', 'dist/services/signer/main.js']);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('uses an existing CA Secret when named, rendering none of its own', () => {
    const rendered = chart.render(['--values', chart.valuesFile, '--set', 'ca.existingSecret=team-rbs-ca']);
    expect(rendered.filter((o) => o.kind === 'Secret')).toEqual([]);
    for (const component of COMPONENTS) {
      const volumes = findObject<V1Deployment>(rendered, 'Deployment', `${RELEASE}-${component}`).spec?.template.spec?.volumes ?? [];
      expect(volumes.map((v) => v.secret?.secretName).filter(Boolean)).toEqual(['team-rbs-ca']);
    }
  });

  test("gives the worker's ServiceAccount exactly BACKEND_RULES, and only it", () => {
    const role = findObject<V1ClusterRole>(objects, 'ClusterRole');
    expect(role.rules).toEqual(BACKEND_RULES);
    const binding = findObject<V1ClusterRoleBinding>(objects, 'ClusterRoleBinding');
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role.metadata?.name });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: serviceAccountName('worker'), namespace: NAMESPACE }]);
    expect(objects.filter((o) => o.kind === 'RoleBinding' || o.kind === 'ClusterRoleBinding')).toHaveLength(1);
  });

  test('mounts a ServiceAccount token into the worker only', () => {
    for (const component of COMPONENTS) {
      const account = findObject<V1ServiceAccount>(objects, 'ServiceAccount', serviceAccountName(component));
      const pod = deployment(component).spec?.template.spec;
      expect(pod?.serviceAccountName).toBe(serviceAccountName(component));
      expect({ component, account: account.automountServiceAccountToken, pod: pod?.automountServiceAccountToken }).toEqual({
        component,
        account: component === 'worker',
        pod: component === 'worker',
      });
    }
  });
});

/** A rule allows `attributes` (apiGroup, resource[/subresource], verb, name), as the RBAC authorizer reads rules. */
function allows(rule: V1PolicyRule, attributes: V1ResourceAttributes): boolean {
  const resource = attributes.subresource ? `${attributes.resource}/${attributes.subresource}` : attributes.resource;
  const has = (list: string[] | undefined, value: string | undefined) => !!list && (list.includes('*') || list.includes(value ?? ''));
  const named = !rule.resourceNames?.length || rule.resourceNames.includes(attributes.name ?? '');
  return has(rule.apiGroups, attributes.group) && has(rule.resources, resource) && has(rule.verbs, attributes.verb) && named;
}

/** Every request BACKEND_RULES allow, one per (group, resource, verb, name). */
function backendRequests(): V1ResourceAttributes[] {
  return BACKEND_RULES.flatMap((rule) =>
    (rule.apiGroups ?? []).flatMap((group) =>
      (rule.resources ?? []).flatMap((resource) =>
        rule.verbs.flatMap((verb) => (rule.resourceNames ?? [undefined]).map((name) => ({ group, resource, verb, name }))),
      ),
    ),
  );
}

/** Representative requests outside BACKEND_RULES: other kinds, other verbs, other Secrets, escalation. */
const OUTSIDE: V1ResourceAttributes[] = [
  { group: '', resource: 'secrets', verb: 'list' },
  { group: '', resource: 'secrets', verb: 'get', name: 'bootstrap-token-abcdef', namespace: 'kube-system' },
  { group: '', resource: 'nodes', verb: 'list' },
  { group: '', resource: 'nodes', verb: 'patch' },
  { group: '', resource: 'pods', subresource: 'exec', verb: 'create' },
  { group: '', resource: 'pods', verb: 'update' },
  { group: '', resource: 'services', verb: 'delete' },
  { group: 'apps', resource: 'deployments', verb: 'create' },
  { group: 'rbac.authorization.k8s.io', resource: 'clusterroles', verb: 'create' },
  { group: 'rbac.authorization.k8s.io', resource: 'clusterroles', verb: 'escalate' },
  { group: 'rbac.authorization.k8s.io', resource: 'clusterrolebindings', verb: 'bind' },
];

describe('helm/rbs on a real apiserver', () => {
  const kube = useKubeControlPlane({ nodes: 1 });
  const admin = () => KubernetesObjectApi.makeApiClient(kube().kubeConfig);

  beforeAll(async () => {
    await installGatewayApi(kube().kubeConfig); // for the Gateway of agents.gateway
    // As a production namespace should be: Pod Security `restricted` enforced.
    const labels = { 'pod-security.kubernetes.io/enforce': 'restricted', 'pod-security.kubernetes.io/enforce-version': 'latest' };
    await kube()
      .kubeConfig.makeApiClient(CoreV1Api)
      .createNamespace({ body: { metadata: { name: NAMESPACE, labels } } });
  });

  test('accepts every rendered object in a server-side dry-run, the Gateway of agents.gateway too', async () => {
    const failures: string[] = [];
    const gateway = chart.render([
      ...chart.valueArgs,
      '--set',
      'agents.gateway.enabled=true,agents.gateway.domain=agents.example.com,agents.gateway.className=envoy',
    ]);
    const routing = gateway.filter((o) => o.kind === 'Gateway' || o.metadata?.name === `rbs-agent-routes-${RELEASE}`);
    expect(routing.map((o) => o.kind).sort()).toEqual(['Gateway', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding']);
    for (const object of [...objects, ...routing]) {
      const body = { ...object, metadata: { ...object.metadata, namespace: NAMESPACE } };
      await admin()
        .create(body, undefined, 'All')
        .catch((err: { body?: unknown; message?: string }) => failures.push(`${object.kind}/${object.metadata?.name}: ${err.body ?? err.message}`));
    }
    expect(failures).toEqual([]);
  });

  describe('installed with helm install', () => {
    /**
     * Each request with whether RBAC lets the ServiceAccount of `component` make it, asked by an admin (the admission
     * policy would refuse the worker's own SelfSubjectAccessReviews: it writes nothing but sessions).
     */
    const reviews = async (component: string, requests: V1ResourceAttributes[]) => {
      const user = `system:serviceaccount:${NAMESPACE}:${serviceAccountName(component)}`;
      const groups = ['system:serviceaccounts', `system:serviceaccounts:${NAMESPACE}`, 'system:authenticated'];
      const authorization = kube().kubeConfig.makeApiClient(AuthorizationV1Api);
      // Each request cluster-wide and in a session namespace, where the backend works.
      const scoped = requests.flatMap((r) => (r.namespace ? [r] : [r, { ...r, namespace: SESSION_NAMESPACE }]));
      return Promise.all(
        scoped.map(async (resourceAttributes) => {
          const review = await authorization.createSubjectAccessReview({ body: { spec: { user, groups, resourceAttributes } } });
          return { ...resourceAttributes, allowed: review.status?.allowed ?? false };
        }),
      );
    };

    beforeAll(() => {
      const result = chart.helm(['install', RELEASE, CHART, '--namespace', NAMESPACE, ...chart.valueArgs], kube().kubeconfigPath);
      if (result.status !== 0) throw new Error(`helm install failed (exit ${result.status}): ${result.stderr}`);
    });

    test("runs both Deployments' pods, which the namespace's Pod Security `restricted` admits", async () => {
      const api = admin();
      // The namespace does enforce it: a pod without the restricted settings is turned away.
      const unrestricted = {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'unrestricted', namespace: NAMESPACE },
        spec: { containers: [{ name: 'c', image: 'busybox' }] },
      };
      await expect(api.create(unrestricted, undefined, 'All')).rejects.toMatchObject({ code: 403, body: expect.stringContaining('PodSecurity') });
      // A pod of each template as its ReplicaSet makes them: a violation fails here, with the apiserver's reasons.
      for (const component of COMPONENTS) {
        const pod = {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: `${component}-template`, namespace: NAMESPACE },
          spec: deployment(component).spec?.template.spec,
        };
        await api.create(pod, undefined, 'All');
      }
      await waitFor(
        async () => {
          const states = await Promise.all(
            COMPONENTS.map((c) =>
              api.read<V1Deployment>({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: `${RELEASE}-${c}`, namespace: NAMESPACE } }),
            ),
          );
          return states.every((d) => d.status?.readyReplicas === d.spec?.replicas);
        },
        60_000,
        'the Deployments to have all their pods ready',
      );
    });

    test('lets the worker do all that BACKEND_RULES allow', async () => {
      const denied = (await reviews('worker', backendRequests())).filter((r) => !r.allowed);
      expect(denied).toEqual([]);
    });

    test('lets the worker do nothing representative outside BACKEND_RULES', async () => {
      for (const request of OUTSIDE) expect({ request, inRules: BACKEND_RULES.some((rule) => allows(rule, request)) }).toEqual({ request, inRules: false });
      const allowed = (await reviews('worker', OUTSIDE)).filter((r) => r.allowed);
      expect(allowed).toEqual([]);
    });

    test('refuses a second release of the same name in another namespace, which would share its sessions', () => {
      const other = `${NAMESPACE}-2`;
      const result = chart.helm(['install', RELEASE, CHART, '--namespace', other, '--create-namespace', ...chart.valueArgs], kube().kubeconfigPath);
      expect({ status: result.status, stderr: result.stderr }).toEqual({
        status: 1,
        stderr: expect.stringMatching(
          new RegExp(`ValidatingAdmissionPolicy(Binding)? "rbs-worker-${RELEASE}" .*exists and cannot be imported into the current release`),
        ),
      });
    });

    test('lets the orchestrator do none of what the backend does', async () => {
      const allowed = (await reviews('orchestrator', backendRequests())).filter((r) => r.allowed);
      expect(allowed).toEqual([]);
    });
  });
});
