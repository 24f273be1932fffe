/** The manifests of a session namespace, as built (the integration tests check what the apiserver makes of them). */
import type { KubernetesBackendConfig } from '../../lib/compute/kubernetes/config';
import {
  AGENT,
  USER_ANNOTATION,
  agentAddress,
  agentPod,
  isFencedAgent,
  agentTlsNames,
  isOfRelease,
  namespaceContents,
  namespaceObject,
  releaseLabels,
  selector,
  tlsSecret,
  workspaceClaim,
} from '../../lib/compute/kubernetes/objects';

const config: KubernetesBackendConfig = {
  release: 'rbs-prod',
  agentImage: 'registry.example/rbs-agent:1',
  agentLeaseMs: 45_000,
  storageClass: 'enterprise-multishare-rwx',
  profile: {
    requests: { cpu: '1', memory: '2Gi' },
    limits: { cpu: '2', memory: '4Gi' },
    quota: { cpu: '3', memory: '6Gi' },
    volumeSize: '50Gi',
  },
  ingress: { namespaceLabels: { 'kubernetes.io/metadata.name': 'rbs' }, cidrs: ['10.8.0.0/16'] },
  dns: { namespaceLabels: { 'kubernetes.io/metadata.name': 'kube-system' }, podLabels: { 'k8s-app': 'kube-dns' }, cidrs: ['169.254.20.10/32'] },
  agentAddressTemplate: 'agent.{namespace}.svc:9443',
};
const spec = { namespace: 'zoe-rbs-0123456789ab', sessionId: '3f2c7a4e-1b2d-4c5e-8f9a-0b1c2d3e4f50', user: 'Zoë Ünicode', volume: 'zoe-vol-0123456789ab' };
const labels = { 'app.kubernetes.io/managed-by': 'rbs', 'rbs.dev/release': 'rbs-prod', 'rbs.dev/session-id': spec.sessionId, 'rbs.dev/volume': spec.volume };

test("the namespace carries ownership labels (the release's among them) and Pod Security restricted; the raw user name only in an annotation", () => {
  const ns = namespaceObject(spec, config);
  expect(ns.metadata?.labels).toEqual({
    ...labels,
    'pod-security.kubernetes.io/enforce': 'restricted',
    'pod-security.kubernetes.io/enforce-version': 'latest',
    'pod-security.kubernetes.io/audit': 'restricted',
    'pod-security.kubernetes.io/audit-version': 'latest',
    'pod-security.kubernetes.io/warn': 'restricted',
    'pod-security.kubernetes.io/warn-version': 'latest',
  });
  expect(ns.metadata?.annotations).toEqual({ [USER_ANNOTATION]: 'Zoë Ünicode' });
});

test('the namespace holds a token-less ServiceAccount, deny-by-default policies, quota and limits from the profile, and the Service', () => {
  const objects = namespaceContents(spec, config);
  expect(objects.map((o) => `${o.kind}/${o.metadata?.name}`)).toEqual([
    'ServiceAccount/agent',
    'NetworkPolicy/default-deny',
    'NetworkPolicy/agent-ingress',
    'NetworkPolicy/agent-egress',
    'ResourceQuota/session-quota',
    'LimitRange/session-limits',
    'Service/agent',
  ]);
  for (const o of objects) expect(o.metadata).toMatchObject({ namespace: spec.namespace, labels });
  const [account, deny, ingress, egress, quota, limits, service] = objects as any[];
  expect(account.automountServiceAccountToken).toBe(false);
  expect(deny.spec).toEqual({ podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
  expect(ingress.spec.ingress).toEqual([
    {
      _from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'rbs' } } }, { ipBlock: { cidr: '10.8.0.0/16' } }],
      ports: [{ protocol: 'TCP', port: 9443 }],
    },
  ]);
  // DNS to the cluster's DNS only: a build cannot reach private addresses on port 53 either.
  expect(egress.spec.egress[0]).toEqual({
    to: [
      { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } },
      { ipBlock: { cidr: '169.254.20.10/32' } },
    ],
    ports: [
      { protocol: 'UDP', port: 53 },
      { protocol: 'TCP', port: 53 },
    ],
  });
  // The internet, in both families, without the private and link-local ranges (cluster, VPC, metadata server).
  expect(egress.spec.egress[1].to).toEqual([
    { ipBlock: { cidr: '0.0.0.0/0', except: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '169.254.0.0/16'] } },
    { ipBlock: { cidr: '::/0', except: ['fc00::/7', 'fe80::/10'] } },
  ]);
  expect(egress.spec.egress).toHaveLength(2);
  expect(quota.spec.hard).toEqual({ 'requests.cpu': '3', 'limits.cpu': '3', 'requests.memory': '6Gi', 'limits.memory': '6Gi' });
  expect(limits.spec.limits).toEqual([{ type: 'Container', defaultRequest: { cpu: '1', memory: '2Gi' }, _default: { cpu: '2', memory: '4Gi' } }]);
  expect(service.spec).toMatchObject({ type: 'ClusterIP', selector: { 'app.kubernetes.io/name': 'rbs-agent' } });
});

test('an ingress of CIDRs only has no namespace selector (which would admit every namespace)', () => {
  const cidrsOnly = { ...config, ingress: { namespaceLabels: {}, cidrs: ['192.0.2.0/24'] } };
  const ingress = namespaceContents(spec, cidrsOnly).find((o) => o.metadata?.name === 'agent-ingress') as any;
  expect(ingress.spec.ingress[0]._from).toEqual([{ ipBlock: { cidr: '192.0.2.0/24' } }]);
});

test('agents are scraped on their metrics port only, and only from the configured namespace: unconfigured, nothing outside the pod reaches it', () => {
  const pod = agentPod(spec, config, 1);
  expect(pod.metadata?.annotations).toBeUndefined(); // nothing may scrape it: nothing is told to try
  expect(pod.spec?.containers[0].env).toContainEqual({ name: 'RBS_AGENT_METRICS_LISTEN', value: '0.0.0.0:9464' });
  expect(pod.spec?.containers[0].ports).toContainEqual({ name: 'metrics', containerPort: AGENT.metricsPort, protocol: 'TCP' });
  const policyNames = (c: KubernetesBackendConfig) =>
    namespaceContents(spec, c)
      .filter((o) => o.kind === 'NetworkPolicy')
      .map((o) => o.metadata?.name);
  expect(policyNames(config)).not.toContain('agent-metrics');
  const scraped = { ...config, metricsScrapers: { 'kubernetes.io/metadata.name': 'monitoring' } };
  expect(agentPod(spec, scraped, 1).metadata?.annotations).toEqual({
    'prometheus.io/scrape': 'true',
    'prometheus.io/port': '9464',
    'prometheus.io/path': '/metrics',
  });
  const metrics = namespaceContents(spec, scraped).find((o) => o.metadata?.name === 'agent-metrics') as any;
  expect(metrics.spec).toEqual({
    podSelector: { matchLabels: { 'app.kubernetes.io/name': 'rbs-agent' } },
    policyTypes: ['Ingress'],
    ingress: [{ _from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }], ports: [{ protocol: 'TCP', port: 9464 }] }],
  });
});

test('with a traces collector, agents export to it and may reach its pods, in its namespace, on its port only; without, neither', () => {
  const env = (c: typeof config) => agentPod(spec, c, 1).spec!.containers[0].env!.filter((e) => /TRACES|OTEL/.test(e.name));
  const egress = (c: typeof config) => namespaceContents(spec, c).find((o) => o.metadata?.name === 'agent-traces') as any;
  expect([env(config), egress(config)]).toEqual([[], undefined]);
  const traced = {
    ...config,
    tracesCollector: {
      endpoint: 'http://otel.monitoring.svc:4318/v1/traces',
      namespaceLabels: { 'kubernetes.io/metadata.name': 'monitoring' },
      podLabels: { app: 'otel' },
      port: 4318,
    },
  };
  // Not an OTEL_* variable, which the builds' own instrumented tools would read.
  expect(env(traced)).toEqual([{ name: 'RBS_AGENT_TRACES_ENDPOINT', value: 'http://otel.monitoring.svc:4318/v1/traces' }]);
  expect(egress(traced).spec).toEqual({
    podSelector: { matchLabels: { 'app.kubernetes.io/name': 'rbs-agent' } },
    policyTypes: ['Egress'],
    egress: [
      {
        to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } }, podSelector: { matchLabels: { app: 'otel' } } }],
        ports: [{ protocol: 'TCP', port: 4318 }],
      },
    ],
  });
});

test('the workspace claim is named after the volume, RWX on the configured class; a re-bound one names its PV at its size', () => {
  const fresh = workspaceClaim(spec.namespace, spec.volume, spec.sessionId, config);
  // The Filestore CSI driver copies the claim's name into the instance's labels, where the cleanup reads it.
  expect(fresh.metadata).toEqual({ name: spec.volume, namespace: spec.namespace, labels });
  expect(fresh.spec).toEqual({ accessModes: ['ReadWriteMany'], storageClassName: config.storageClass, resources: { requests: { storage: '50Gi' } } });
  const rebound = workspaceClaim(spec.namespace, spec.volume, spec.sessionId, config, { persistentVolume: 'pvc-1', capacity: '1Ti' });
  expect(rebound.spec).toMatchObject({ volumeName: 'pvc-1', resources: { requests: { storage: '1Ti' } } });
});

test('the TLS secret holds the PEMs and is mounted as the files the agent reads', () => {
  const secret = tlsSecret(spec, { caCertPem: 'CA', certPem: 'CERT', keyPem: 'KEY' }, config);
  expect(secret).toMatchObject({ type: 'kubernetes.io/tls', metadata: { labels } });
  expect(secret.data).toEqual({ 'ca.crt': 'Q0E=', 'tls.crt': 'Q0VSVA==', 'tls.key': 'S0VZ' });
  const volume = agentPod(spec, config, 1).spec!.volumes!.find((v) => v.name === 'tls')!;
  expect(volume.secret).toEqual({
    secretName: AGENT.tlsSecret,
    defaultMode: 0o440,
    items: [
      { key: 'ca.crt', path: 'ca.crt' },
      { key: 'tls.crt', path: 'agent.crt' },
      { key: 'tls.key', path: 'agent.key' },
    ],
  });
});

test('the agent pod is restricted, token-less, sized by the profile, probed over plaintext gRPC health, with /workspace mounted', () => {
  const pod = agentPod(spec, config, 1764892800123);
  const podSpec = pod.spec!;
  const [container] = podSpec.containers;
  // Stamped by the worker, so that a restarted container keeps its pod's place among the volume's agents.
  expect(container.env).toContainEqual({ name: 'RBS_AGENT_GENERATION', value: '1764892800123' });
  // The lease the worker allows for when it waits for a replacement (lib/agent-lease.ts).
  expect(container.env).toContainEqual({ name: 'RBS_AGENT_LEASE_MS', value: '45000' });
  expect(isFencedAgent(pod)).toBe(true);
  // A pod from before the volume lease runs an agent that would not stop: never replaced while it may run.
  const before = { ...pod, spec: { ...podSpec, containers: [{ ...container, env: container.env!.filter((e) => e.name !== 'RBS_AGENT_GENERATION') }] } };
  expect(isFencedAgent(before)).toBe(false);
  expect(pod.metadata?.labels).toEqual({ ...labels, 'app.kubernetes.io/name': 'rbs-agent' });
  expect(podSpec).toMatchObject({ serviceAccountName: 'agent', automountServiceAccountToken: false, enableServiceLinks: false });
  expect(podSpec.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
  expect(container.securityContext).toEqual({
    runAsNonRoot: true,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  });
  expect(container.image).toBe(config.agentImage);
  expect(container.resources).toEqual({ requests: { cpu: '1', memory: '2Gi' }, limits: { cpu: '2', memory: '4Gi' } });
  expect(container.readinessProbe?.grpc).toEqual({ port: AGENT.healthPort });
  expect(container.volumeMounts).toEqual([
    { name: 'workspace', mountPath: '/workspace' },
    { name: 'tls', mountPath: '/etc/rbs/tls', readOnly: true },
    { name: 'tmp', mountPath: '/tmp' },
  ]);
  expect(podSpec.volumes![0]).toEqual({ name: 'workspace', persistentVolumeClaim: { claimName: spec.volume } });
  const env = Object.fromEntries(container.env!.map((e) => [e.name, e.value]));
  expect(env).toMatchObject({
    RBS_AGENT_SESSION: spec.sessionId,
    RBS_AGENT_LISTEN: '0.0.0.0:9443',
    RBS_AGENT_HEALTH_LISTEN: '0.0.0.0:9444',
    RBS_AGENT_TLS_DIR: '/etc/rbs/tls',
    RBS_AGENT_VOLUME_DIR: '/workspace',
    HOME: '/workspace/home',
  });
});

test("the agent's address comes from the template, and its certificate names the Service and that host", () => {
  expect(agentAddress(spec.namespace, config)).toBe(`agent.${spec.namespace}.svc:9443`);
  expect(agentTlsNames(spec.namespace, config)).toEqual({
    dnsNames: [`agent.${spec.namespace}.svc`, `agent.${spec.namespace}.svc.cluster.local`],
    ipAddresses: [],
  });
  const gateway = { ...config, agentAddressTemplate: '{namespace}.agents.rbs.example.com:443' };
  expect(agentAddress(spec.namespace, gateway)).toBe(`${spec.namespace}.agents.rbs.example.com:443`);
  expect(agentTlsNames(spec.namespace, gateway).dnsNames).toContain(`${spec.namespace}.agents.rbs.example.com`);
});

test("every object carries its release, so another release's selectors select none of them", () => {
  expect(selector(releaseLabels('rbs-prod'))).toBe('app.kubernetes.io/managed-by=rbs,rbs.dev/release=rbs-prod');
  const credentials = { caCertPem: 'CA', certPem: 'CERT', keyPem: 'KEY' };
  const objects = [
    namespaceObject(spec, config),
    ...namespaceContents(spec, config),
    workspaceClaim(spec.namespace, spec.volume, spec.sessionId, config),
    tlsSecret(spec, credentials, config),
    agentPod(spec, config, 1),
  ];
  for (const object of objects) {
    const { kind, labels } = { kind: object.kind, labels: object.metadata?.labels };
    expect({ kind, ours: isOfRelease(labels, 'rbs-prod'), theirs: isOfRelease(labels, 'rbs') }).toEqual({ kind, ours: true, theirs: false });
  }
});
