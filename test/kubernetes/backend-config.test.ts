/** RBS_BACKEND=kubernetes settings: good ones parse, bad ones stop the worker with the variable's name. */
import { loadConfig } from '../../lib/config';
import { parseQuantity } from '../../lib/compute/kubernetes/quantity';

/** The collector of agents' spans: its namespace and pods (its URL varies). */
const traces = {
  RBS_KUBE_AGENT_TRACES_ENDPOINT: 'http://otel.monitoring.svc:4318/v1/traces',
  RBS_KUBE_TRACES_NAMESPACE_LABELS: 'kubernetes.io/metadata.name=monitoring',
  RBS_KUBE_TRACES_POD_LABELS: 'app.kubernetes.io/name=opentelemetry-collector',
};
const base = { RBS_HOME: '/tmp/rbs-config-test', RBS_BACKEND: 'kubernetes', RBS_KUBE_AGENT_IMAGE: 'rbs-agent:1', RBS_KUBE_INGRESS_CIDRS: '10.0.0.0/8' };

test('the local backend is the default', () => {
  expect(loadConfig({ RBS_HOME: '/tmp/x' }).backend).toEqual({ kind: 'local' });
  expect(() => loadConfig({ RBS_HOME: '/tmp/x', RBS_BACKEND: 'docker' })).toThrow(/RBS_BACKEND must be 'local' or 'kubernetes', got 'docker'/);
});

test('kubernetes settings with their defaults', () => {
  expect(loadConfig(base).backend).toEqual({
    kind: 'kubernetes',
    kubernetes: {
      release: 'rbs',
      agentImage: 'rbs-agent:1',
      agentLeaseMs: 30_000,
      storageClass: 'enterprise-multishare-rwx',
      profile: {
        requests: { cpu: '2', memory: '8Gi' },
        limits: { cpu: '4', memory: '8Gi' },
        quota: { cpu: '4', memory: '8Gi' },
        volumeSize: '100Gi',
      },
      ingress: { namespaceLabels: {}, cidrs: ['10.0.0.0/8'] },
      dns: { namespaceLabels: { 'kubernetes.io/metadata.name': 'kube-system' }, podLabels: { 'k8s-app': 'kube-dns' }, cidrs: [] },
      agentAddressTemplate: 'agent.{namespace}.svc:9443',
    },
    filestore: null,
  });
});

test('every setting can be given', () => {
  const { backend } = loadConfig({
    ...base,
    RBS_KUBE_STORAGE_CLASS: 'zonal-rwx',
    RBS_KUBE_VOLUME_SIZE: '1Ti',
    RBS_KUBE_CPU_REQUEST: '500m',
    RBS_KUBE_CPU_LIMIT: '1',
    RBS_KUBE_MEMORY_REQUEST: '1Gi',
    RBS_KUBE_MEMORY_LIMIT: '2Gi',
    RBS_KUBE_QUOTA_CPU: '2',
    RBS_KUBE_QUOTA_MEMORY: '4Gi',
    RBS_KUBE_INGRESS_NAMESPACE_LABELS: 'kubernetes.io/metadata.name=rbs-gateway, team=build',
    RBS_KUBE_INGRESS_CIDRS: '10.0.0.0/8, fd00::/8',
    RBS_KUBE_AGENT_ADDRESS: '{namespace}.agents.example.com:443',
    RBS_KUBE_RELEASE: 'rbs-prod',
    RBS_KUBE_DNS_NAMESPACE_LABELS: 'kubernetes.io/metadata.name=dns',
    RBS_KUBE_DNS_POD_LABELS: 'app=coredns',
    RBS_KUBE_DNS_CIDRS: '169.254.20.10/32',
    RBS_KUBE_GATEWAY: 'rbs-system/rbs-agents',
    RBS_KUBE_AGENT_LEASE_MS: '60000',
  });
  expect(backend).toMatchObject({
    kubernetes: {
      storageClass: 'zonal-rwx',
      profile: { requests: { cpu: '500m', memory: '1Gi' }, limits: { cpu: '1', memory: '2Gi' }, quota: { cpu: '2', memory: '4Gi' }, volumeSize: '1Ti' },
      ingress: { namespaceLabels: { 'kubernetes.io/metadata.name': 'rbs-gateway', team: 'build' }, cidrs: ['10.0.0.0/8', 'fd00::/8'] },
      agentAddressTemplate: '{namespace}.agents.example.com:443',
      release: 'rbs-prod',
      dns: { namespaceLabels: { 'kubernetes.io/metadata.name': 'dns' }, podLabels: { app: 'coredns' }, cidrs: ['169.254.20.10/32'] },
      gateway: { namespace: 'rbs-system', name: 'rbs-agents' },
      agentLeaseMs: 60_000,
    },
  });
});

test('without RBS_KUBE_GATEWAY there is no route', () => {
  expect(loadConfig(base).backend).not.toHaveProperty('kubernetes.gateway');
});

test("agents' traces: the collector's URL, namespace and pods, its port from the URL or the scheme; none of them, none", () => {
  expect(loadConfig(base).backend).not.toHaveProperty('kubernetes.tracesCollector');
  const withEndpoint = (endpoint: string) => loadConfig({ ...base, ...traces, RBS_KUBE_AGENT_TRACES_ENDPOINT: endpoint }).backend;
  expect(withEndpoint('http://otel.monitoring.svc:4318/v1/traces')).toHaveProperty('kubernetes.tracesCollector', {
    endpoint: 'http://otel.monitoring.svc:4318/v1/traces',
    namespaceLabels: { 'kubernetes.io/metadata.name': 'monitoring' },
    podLabels: { 'app.kubernetes.io/name': 'opentelemetry-collector' },
    port: 4318,
  });
  expect(withEndpoint('https://otel.monitoring.svc/v1/traces')).toHaveProperty('kubernetes.tracesCollector.port', 443);
  expect(withEndpoint('http://otel.monitoring.svc/v1/traces')).toHaveProperty('kubernetes.tracesCollector.port', 80);
});

test.each([
  [{ RBS_KUBE_AGENT_IMAGE: '' }, /RBS_KUBE_AGENT_IMAGE must name the agent's image/],
  [{ RBS_KUBE_STORAGE_CLASS: 'Bad_Class' }, /RBS_KUBE_STORAGE_CLASS 'Bad_Class' is not a StorageClass name/],
  [{ RBS_KUBE_CPU_LIMIT: 'lots' }, /RBS_KUBE_CPU_LIMIT: 'lots' is not a Kubernetes quantity/],
  [{ RBS_KUBE_CPU_REQUEST: '8' }, /RBS_KUBE_CPU_REQUEST \(8\) exceeds RBS_KUBE_CPU_LIMIT \(4\)/],
  [{ RBS_KUBE_QUOTA_MEMORY: '4Gi' }, /RBS_KUBE_MEMORY_LIMIT \(8Gi\) exceeds RBS_KUBE_QUOTA_MEMORY \(4Gi\)/],
  [{ RBS_KUBE_VOLUME_SIZE: '10 GB' }, /RBS_KUBE_VOLUME_SIZE: '10 GB' is not a Kubernetes quantity/],
  [{ RBS_KUBE_INGRESS_CIDRS: '' }, /set RBS_KUBE_INGRESS_NAMESPACE_LABELS and\/or RBS_KUBE_INGRESS_CIDRS/],
  [{ RBS_KUBE_INGRESS_CIDRS: '10.0.0.0/33' }, /RBS_KUBE_INGRESS_CIDRS: '10.0.0.0\/33' is not a CIDR/],
  [{ RBS_KUBE_INGRESS_CIDRS: 'example.com/8' }, /is not a CIDR/],
  [{ RBS_KUBE_INGRESS_NAMESPACE_LABELS: 'team' }, /RBS_KUBE_INGRESS_NAMESPACE_LABELS: 'team' is not a label key=value/],
  [{ RBS_KUBE_INGRESS_NAMESPACE_LABELS: 'team=a b' }, /is not a label key=value/],
  [{ RBS_KUBE_AGENT_ADDRESS: 'agent.svc:9443' }, /RBS_KUBE_AGENT_ADDRESS must be host:port with \{namespace\} in it/],
  [{ RBS_KUBE_AGENT_ADDRESS: 'agent.{namespace}.svc' }, /RBS_KUBE_AGENT_ADDRESS must be host:port/],
  [{ RBS_KUBE_RELEASE: 'rbs prod' }, /RBS_KUBE_RELEASE must be a label value .*, got 'rbs prod'/],
  [{ RBS_KUBE_RELEASE: 'r'.repeat(64) }, /RBS_KUBE_RELEASE must be a label value \(at most 63/],
  [{ RBS_KUBE_DNS_POD_LABELS: 'k8s-app' }, /RBS_KUBE_DNS_POD_LABELS: 'k8s-app' is not a label key=value/],
  [{ RBS_KUBE_DNS_CIDRS: '169.254.20.10' }, /RBS_KUBE_DNS_CIDRS: '169.254.20.10' is not a CIDR/],
  [{ RBS_KUBE_GATEWAY: 'rbs-agents' }, /RBS_KUBE_GATEWAY must be namespace\/name of a Gateway, got 'rbs-agents'/],
  [{ RBS_KUBE_GATEWAY: 'a/b/c' }, /RBS_KUBE_GATEWAY must be namespace\/name/],
  [{ RBS_KUBE_GATEWAY: 'Rbs/agents' }, /RBS_KUBE_GATEWAY must be namespace\/name/],
  // The default address is a cluster Service name, which a gateway outside the cluster cannot route to.
  [{ RBS_KUBE_GATEWAY: 'rbs-system/rbs-agents' }, /RBS_KUBE_GATEWAY needs RBS_KUBE_AGENT_ADDRESS to name the gateway by a DNS host with \{namespace\} in it/],
  [
    { RBS_KUBE_GATEWAY: 'rbs-system/rbs-agents', RBS_KUBE_AGENT_ADDRESS: '10.0.0.1:{namespace}443' },
    /RBS_KUBE_AGENT_ADDRESS must be host:port|needs RBS_KUBE_AGENT_ADDRESS/,
  ],
  [
    { RBS_KUBE_GATEWAY: 'rbs-system/rbs-agents', RBS_KUBE_AGENT_ADDRESS: '{namespace}_agents.example.com:443' },
    /needs RBS_KUBE_AGENT_ADDRESS to name the gateway by a DNS host/,
  ],
  [
    { RBS_KUBE_AGENT_TRACES_ENDPOINT: 'http://otel:4318/v1/traces' },
    /set all of RBS_KUBE_AGENT_TRACES_ENDPOINT, RBS_KUBE_TRACES_NAMESPACE_LABELS and RBS_KUBE_TRACES_POD_LABELS/,
  ],
  [{ RBS_KUBE_TRACES_NAMESPACE_LABELS: 'team=obs', RBS_KUBE_AGENT_TRACES_ENDPOINT: 'http://otel:4318/v1/traces' }, /set all of/],
  [{ RBS_KUBE_TRACES_POD_LABELS: 'app=otel' }, /set all of/],
  [
    { ...traces, RBS_KUBE_AGENT_TRACES_ENDPOINT: 'otel:4318' },
    /must be the http\(s\) URL of an OTLP collector's traces path, without credentials, got 'otel:4318'/,
  ],
  // A base URL: agents would post to / and lose every span.
  [{ ...traces, RBS_KUBE_AGENT_TRACES_ENDPOINT: 'http://otel:4318' }, /traces path/],
  // Credentials would reach every build's environment; the message does not repeat them.
  [{ ...traces, RBS_KUBE_AGENT_TRACES_ENDPOINT: 'http://u:secret@otel:4318/v1/traces' }, /without credentials, got 'http:\/\/…@otel:4318\/v1\/traces'/],
  [{ ...traces, RBS_KUBE_TRACES_NAMESPACE_LABELS: 'team' }, /RBS_KUBE_TRACES_NAMESPACE_LABELS: 'team' is not a label/],
])('refuses %j', (env, message) => {
  expect(() => loadConfig({ ...base, ...env })).toThrow(message);
});

test.each(['0', '4999', '300001', '1.5e4', '30s', '-30000'])("refuses an agent lease of '%s' ms", (ms) => {
  expect(() => loadConfig({ ...base, RBS_KUBE_AGENT_LEASE_MS: ms })).toThrow(
    `RBS_KUBE_AGENT_LEASE_MS must be a whole number of ms from 5000 to 300000, got '${ms}'`,
  );
});

test('quantities', () => {
  expect(parseQuantity('500m')).toBe(0.5);
  expect(parseQuantity('2')).toBe(2);
  expect(parseQuantity('1.5G')).toBe(1.5e9);
  expect(parseQuantity('8Gi')).toBe(8 * 2 ** 30);
  for (const bad of ['', '-1', '1gi', '1 Gi', 'Gi', '1e3']) expect(() => parseQuantity(bad)).toThrow(/not a Kubernetes quantity/);
});

describe('Filestore settings of the volumes', () => {
  const filestore = {
    RBS_KUBE_STORAGE_CLASS: 'rbs-zonal',
    RBS_FILESTORE_PROJECT: 'rbs-prod',
    RBS_FILESTORE_REGION: 'us-central1',
    RBS_FILESTORE_TIER: 'ZONAL',
    RBS_FILESTORE_QUOTA_GIB: '10240',
  };

  test('all four give lib/filestore its config', () => {
    expect(loadConfig({ ...base, ...filestore }).backend).toMatchObject({
      filestore: { project: 'rbs-prod', region: 'us-central1', tier: 'ZONAL', quotaGib: 10240 },
    });
    // GKE's own class of the same tier is fine too.
    expect(loadConfig({ ...base, ...filestore, RBS_KUBE_STORAGE_CLASS: 'zonal-rwx' }).backend).toMatchObject({ filestore: { tier: 'ZONAL' } });
  });

  test.each([
    [
      { RBS_FILESTORE_REGION: '', RBS_FILESTORE_QUOTA_GIB: ' ' },
      /RBS_FILESTORE_REGION, RBS_FILESTORE_QUOTA_GIB unset: set all of RBS_FILESTORE_PROJECT, .*, or none/,
    ],
    [{ RBS_FILESTORE_QUOTA_GIB: '10Ti' }, /RBS_FILESTORE_QUOTA_GIB must be a whole number of GiB, got '10Ti'/],
    [{ RBS_FILESTORE_QUOTA_GIB: '0' }, /RBS_FILESTORE_\*: .*quotaGib must be a positive integer, got 0/],
    [{ RBS_FILESTORE_REGION: 'us-central1-a' }, /RBS_FILESTORE_\*: .*region "us-central1-a" is not a region/],
    [{ RBS_FILESTORE_TIER: 'zonal' }, /RBS_FILESTORE_\*: .*tier "zonal" is not one of BASIC_HDD, /],
    [{ RBS_FILESTORE_PROJECT: 'Bad Project' }, /RBS_FILESTORE_\*: .*project "Bad Project" is not a project id/],
    [
      { RBS_KUBE_STORAGE_CLASS: '' },
      /RBS_KUBE_STORAGE_CLASS enterprise-multishare-rwx makes shares of multishare instances, which RBS_FILESTORE_\* cannot back up/,
    ],
    [{ RBS_KUBE_STORAGE_CLASS: 'enterprise-rwx' }, /RBS_KUBE_STORAGE_CLASS enterprise-rwx provisions ENTERPRISE instances, but RBS_FILESTORE_TIER is ZONAL/],
  ])('refuses %j', (env, message) => {
    expect(() => loadConfig({ ...base, ...filestore, ...env })).toThrow(message);
  });

  test('belong to the Kubernetes backend only', () => {
    expect(() => loadConfig({ RBS_HOME: '/tmp/x', RBS_FILESTORE_PROJECT: 'rbs-prod' })).toThrow(
      /RBS_FILESTORE_PROJECT, .* configure the volumes of RBS_BACKEND=kubernetes, not of the local backend/,
    );
  });
});
