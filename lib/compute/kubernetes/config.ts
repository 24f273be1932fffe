/**
 * Settings of the Kubernetes backend, from RBS_KUBE_* environment variables (lib/config.ts reads
 * them when RBS_BACKEND=kubernetes). Every value is checked here, so a bad one stops the worker at
 * start with the variable's name instead of failing each session later.
 */
import * as net from 'node:net';
import { DEFAULT_AGENT_LEASE_MS, MAX_AGENT_LEASE_MS, MIN_AGENT_LEASE_MS } from '../../agent-lease';
import { isDns1123Label } from '../../naming';
import { httpUrl, redacted } from '../../tracing/tracing';
import { parseQuantity } from './quantity';

export interface ResourceProfile {
  /** Of the agent container. */
  requests: { cpu: string; memory: string };
  limits: { cpu: string; memory: string };
  /** The namespace's hard cap, on requests and on limits alike. */
  quota: { cpu: string; memory: string };
  /** The size of a new workspace volume. */
  volumeSize: string;
}

/** Who may open the agent's mTLS port: pods in namespaces with these labels, and these CIDRs. */
export interface AgentIngress {
  namespaceLabels: Record<string, string>;
  cidrs: string[];
}

/**
 * Where agents may resolve names: the cluster's DNS pods (namespace and pod labels, both required, so
 * that no other pod may pose as DNS), and CIDRs such as NodeLocal DNSCache's link-local address.
 */
export interface ClusterDns {
  namespaceLabels: Record<string, string>;
  podLabels: Record<string, string>;
  cidrs: string[];
}

export interface KubernetesBackendConfig {
  /**
   * Which RBS installation's sessions these are: every label and selector carries it, so two
   * releases in one cluster never list, re-bind or delete each other's objects.
   */
  release: string;
  agentImage: string;
  /**
   * The agent's volume lease (lib/agent-lease.ts): how long an agent that cannot reach its volume keeps
   * serving, and so how long its replacement waits after its node is lost.
   */
  agentLeaseMs: number;
  /** ReadWriteMany class of workspace volumes, e.g. Filestore's `enterprise-multishare-rwx`. */
  storageClass: string;
  profile: ResourceProfile;
  ingress: AgentIngress;
  /** Labels of the namespace whose pods (Prometheus) may scrape agents' metrics port; none: nobody outside the pod. */
  metricsScrapers?: Record<string, string>;
  /** The OTLP collector agents export their spans to; absent, agents export none (lib/tracing). */
  tracesCollector?: TracesCollector;
  dns: ClusterDns;
  /** host:port the proxy dials, `{namespace}` standing for the session's namespace. */
  agentAddressTemplate: string;
  /**
   * The Gateway whose TLS-passthrough listener routes the agent address's host to the agent: each
   * session gets a TLSRoute for its host (objects.ts agentRoute). Absent: proxies reach the
   * Service by other means (VPN, VPC-native routing).
   */
  gateway?: GatewayRef;
}

/**
 * Agents may not reach private addresses (agent-egress), so a collector in the cluster is allowed
 * by name: the pods with these labels in the namespace with those, on the endpoint's port only
 * (which must be the pods' own: a NetworkPolicy sees the port after the Service translated it).
 */
export interface TracesCollector {
  /** OTLP/HTTP traces URL, e.g. http://otel-collector.monitoring.svc:4318/v1/traces. */
  endpoint: string;
  namespaceLabels: Record<string, string>;
  podLabels: Record<string, string>;
  port: number;
}

export interface GatewayRef {
  namespace: string;
  name: string;
}

export const DEFAULT_AGENT_ADDRESS_TEMPLATE = 'agent.{namespace}.svc:9443';
export const DEFAULT_RELEASE = 'rbs';
/** kube-dns and CoreDNS pods carry k8s-app=kube-dns in kube-system on GKE, kubeadm, EKS and AKS alike. */
export const DEFAULT_DNS = { namespaceLabels: 'kubernetes.io/metadata.name=kube-system', podLabels: 'k8s-app=kube-dns' };

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$/;
const LABEL_VALUE = /^(([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?)$/;

export function kubernetesConfigFromEnv(env: NodeJS.ProcessEnv): KubernetesBackendConfig {
  const get = (name: string, fallback: string) => (env[name] === undefined || env[name] === '' ? fallback : env[name]!.trim());
  const quantity = (name: string, fallback: string) => {
    const value = get(name, fallback);
    try {
      return { value, amount: parseQuantity(value) };
    } catch (err) {
      throw new Error(`${name}: ${(err as Error).message}`);
    }
  };
  const release = get('RBS_KUBE_RELEASE', DEFAULT_RELEASE);
  if (release.length > 63 || !LABEL_VALUE.test(release)) {
    throw new Error(`RBS_KUBE_RELEASE must be a label value (at most 63 of [A-Za-z0-9-_.], alphanumeric at both ends), got '${release}'`);
  }
  const agentImage = get('RBS_KUBE_AGENT_IMAGE', '');
  if (!agentImage || /\s/.test(agentImage)) throw new Error(`RBS_KUBE_AGENT_IMAGE must name the agent's image, got '${agentImage}'`);
  const leaseText = get('RBS_KUBE_AGENT_LEASE_MS', String(DEFAULT_AGENT_LEASE_MS));
  const agentLeaseMs = Number(leaseText);
  if (!/^\d+$/.test(leaseText) || agentLeaseMs < MIN_AGENT_LEASE_MS || agentLeaseMs > MAX_AGENT_LEASE_MS) {
    throw new Error(`RBS_KUBE_AGENT_LEASE_MS must be a whole number of ms from ${MIN_AGENT_LEASE_MS} to ${MAX_AGENT_LEASE_MS}, got '${leaseText}'`);
  }
  const storageClass = get('RBS_KUBE_STORAGE_CLASS', 'enterprise-multishare-rwx');
  if (!DNS_SUBDOMAIN.test(storageClass)) throw new Error(`RBS_KUBE_STORAGE_CLASS '${storageClass}' is not a StorageClass name`);

  const cpu = ordered([
    ['RBS_KUBE_CPU_REQUEST', quantity('RBS_KUBE_CPU_REQUEST', '2')],
    ['RBS_KUBE_CPU_LIMIT', quantity('RBS_KUBE_CPU_LIMIT', '4')],
    ['RBS_KUBE_QUOTA_CPU', quantity('RBS_KUBE_QUOTA_CPU', get('RBS_KUBE_CPU_LIMIT', '4'))],
  ]);
  const memory = ordered([
    ['RBS_KUBE_MEMORY_REQUEST', quantity('RBS_KUBE_MEMORY_REQUEST', '8Gi')],
    ['RBS_KUBE_MEMORY_LIMIT', quantity('RBS_KUBE_MEMORY_LIMIT', '8Gi')],
    ['RBS_KUBE_QUOTA_MEMORY', quantity('RBS_KUBE_QUOTA_MEMORY', get('RBS_KUBE_MEMORY_LIMIT', '8Gi'))],
  ]);
  const volumeSize = quantity('RBS_KUBE_VOLUME_SIZE', '100Gi').value;

  const labels = (name: string, fallback: string) => parseLabels(name, get(name, fallback));
  const cidrs = (name: string) => parseCidrs(name, get(name, ''));
  const ingress = { namespaceLabels: labels('RBS_KUBE_INGRESS_NAMESPACE_LABELS', ''), cidrs: cidrs('RBS_KUBE_INGRESS_CIDRS') };
  if (Object.keys(ingress.namespaceLabels).length === 0 && ingress.cidrs.length === 0) {
    throw new Error('set RBS_KUBE_INGRESS_NAMESPACE_LABELS and/or RBS_KUBE_INGRESS_CIDRS: with neither, nothing may reach an agent');
  }
  const agentAddressTemplate = get('RBS_KUBE_AGENT_ADDRESS', DEFAULT_AGENT_ADDRESS_TEMPLATE);
  if (!agentAddressTemplate.includes('{namespace}') || !/:\d{1,5}$/.test(agentAddressTemplate)) {
    throw new Error(`RBS_KUBE_AGENT_ADDRESS must be host:port with {namespace} in it, got '${agentAddressTemplate}'`);
  }
  const gateway = parseGateway(get('RBS_KUBE_GATEWAY', ''), agentAddressTemplate);
  const metricsScrapers = labels('RBS_KUBE_METRICS_NAMESPACE_LABELS', '');
  const tracesCollector = parseTracesCollector(
    get('RBS_KUBE_AGENT_TRACES_ENDPOINT', ''),
    labels('RBS_KUBE_TRACES_NAMESPACE_LABELS', ''),
    labels('RBS_KUBE_TRACES_POD_LABELS', ''),
  );
  const dns = {
    namespaceLabels: labels('RBS_KUBE_DNS_NAMESPACE_LABELS', DEFAULT_DNS.namespaceLabels),
    podLabels: labels('RBS_KUBE_DNS_POD_LABELS', DEFAULT_DNS.podLabels),
    cidrs: cidrs('RBS_KUBE_DNS_CIDRS'),
  };
  return {
    release,
    agentImage,
    agentLeaseMs,
    storageClass,
    profile: {
      requests: { cpu: cpu[0], memory: memory[0] },
      limits: { cpu: cpu[1], memory: memory[1] },
      quota: { cpu: cpu[2], memory: memory[2] },
      volumeSize,
    },
    ingress,
    dns,
    agentAddressTemplate,
    ...(gateway ? { gateway } : {}),
    ...(Object.keys(metricsScrapers).length > 0 ? { metricsScrapers } : {}),
    ...(tracesCollector ? { tracesCollector } : {}),
  };
}

/**
 * All three or none: an endpoint agents could not reach would lose every span, and a policy without
 * pod labels would open every pod of the namespace to builds.
 */
function parseTracesCollector(endpoint: string, namespaceLabels: Record<string, string>, podLabels: Record<string, string>): TracesCollector | undefined {
  const given = [endpoint !== '', Object.keys(namespaceLabels).length > 0, Object.keys(podLabels).length > 0];
  if (given.every((g) => !g)) return undefined;
  if (!given.every((g) => g)) {
    throw new Error(
      'set all of RBS_KUBE_AGENT_TRACES_ENDPOINT, RBS_KUBE_TRACES_NAMESPACE_LABELS and RBS_KUBE_TRACES_POD_LABELS (the collector, its namespace and its pods), or none',
    );
  }
  const url = httpUrl(endpoint);
  // The traces path itself (agents post there as given): a base URL alone would lose every span.
  if (!url || url.pathname === '/' || url.username || url.password) {
    throw new Error(
      `RBS_KUBE_AGENT_TRACES_ENDPOINT must be the http(s) URL of an OTLP collector's traces path, without credentials, got '${redacted(endpoint)}'`,
    );
  }
  const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  return { endpoint, namespaceLabels, podLabels, port };
}

/**
 * 'namespace/name' of a Gateway. A route's hostname must be a DNS name (a gateway routes by SNI,
 * which carries no IP address), and one per session: the template's host holds {namespace}.
 */
function parseGateway(text: string, agentAddressTemplate: string): GatewayRef | undefined {
  if (text === '') return undefined;
  const [namespace, name, ...rest] = text.split('/');
  if (rest.length > 0 || !isDns1123Label(namespace ?? '') || !DNS_SUBDOMAIN.test(name ?? '')) {
    throw new Error(`RBS_KUBE_GATEWAY must be namespace/name of a Gateway, got '${text}'`);
  }
  const host = agentAddressTemplate.replace(/:\d+$/, '');
  const sample = host.replaceAll('{namespace}', 'ns');
  if (!host.includes('{namespace}') || net.isIP(sample) !== 0 || !DNS_SUBDOMAIN.test(sample) || /\.svc(\.|$)/.test(sample)) {
    throw new Error(
      `RBS_KUBE_GATEWAY needs RBS_KUBE_AGENT_ADDRESS to name the gateway by a DNS host with {namespace} in it ` +
        `(e.g. {namespace}.agents.example.com:443), got '${agentAddressTemplate}'`,
    );
  }
  return { namespace, name };
}

/** A request above its limit, or a limit above the quota, could never be admitted. */
function ordered(quantities: Array<[string, { value: string; amount: number }]>): string[] {
  for (let i = 1; i < quantities.length; i++) {
    const [lower, below] = quantities[i - 1];
    const [upper, above] = quantities[i];
    if (below.amount > above.amount) throw new Error(`${lower} (${below.value}) exceeds ${upper} (${above.value})`);
  }
  return quantities.map(([, q]) => q.value);
}

/** 'k=v,k2=v2' → { k: 'v', k2: 'v2' } (keys may carry a DNS prefix: 'kubernetes.io/metadata.name=gw'). */
function parseLabels(variable: string, text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of text.split(',').filter((p) => p.trim() !== '')) {
    const [key, value, ...rest] = pair.trim().split('=');
    const [prefix, name] = key.includes('/') ? key.split('/', 2) : [undefined, key];
    const validKey = (prefix === undefined || DNS_SUBDOMAIN.test(prefix)) && name.length <= 63 && LABEL_NAME.test(name);
    if (rest.length > 0 || value === undefined || !validKey || value.length > 63 || !LABEL_VALUE.test(value)) {
      throw new Error(`${variable}: '${pair}' is not a label key=value`);
    }
    labels[key] = value;
  }
  return labels;
}

function parseCidrs(variable: string, text: string): string[] {
  return text
    .split(',')
    .map((c) => c.trim())
    .filter((c) => c !== '')
    .map((cidr) => {
      const [address, prefix, ...rest] = cidr.split('/');
      const family = net.isIP(address);
      const bits = Number(prefix);
      if (rest.length > 0 || family === 0 || !/^\d+$/.test(prefix ?? '') || bits > (family === 4 ? 32 : 128)) {
        throw new Error(`${variable}: '${cidr}' is not a CIDR (e.g. 10.0.0.0/8)`);
      }
      return cidr;
    });
}
