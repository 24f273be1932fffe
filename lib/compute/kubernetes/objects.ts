/**
 * The objects of a session namespace, built from the session and the backend's config. Pure: no
 * API calls, so what a session gets is readable (and unit-tested) in one place. Applied with
 * server-side apply, so each builder states the whole of what the backend wants of its object.
 */
import { isIP } from 'node:net';
import type {
  KubernetesObject,
  V1LimitRange,
  V1Namespace,
  V1NetworkPolicy,
  V1NetworkPolicySpec,
  V1PersistentVolumeClaim,
  V1Pod,
  V1ResourceQuota,
  V1Secret,
  V1Service,
  V1ServiceAccount,
} from '@kubernetes/client-node';
import type { AgentCredentials, AgentSpec, AgentTlsNames, NamespaceSpec } from '../backend';
import type { KubernetesBackendConfig } from './config';

export const LABEL = {
  managedBy: 'app.kubernetes.io/managed-by',
  /** The RBS installation (KubernetesBackendConfig.release): what keeps two releases in one cluster apart. */
  release: 'rbs.dev/release',
  name: 'app.kubernetes.io/name',
  sessionId: 'rbs.dev/session-id',
  volume: 'rbs.dev/volume',
} as const;
export const MANAGED_BY = 'rbs';
/** The raw user name: any Unicode, so an annotation, never a label (nor part of a name). */
export const USER_ANNOTATION = 'rbs.dev/user';

/** Names inside a session namespace: one session, one of each. */
export const AGENT = {
  name: 'agent',
  appName: 'rbs-agent',
  tlsSecret: 'agent-tls',
  port: 9443,
  /** Plaintext, health only: the kubelet's gRPC probe does not speak TLS. */
  healthPort: 9444,
  /** Plaintext Prometheus metrics (GET /metrics): counts and durations, nothing of the build's content. */
  metricsPort: 9464,
  volumeMount: '/workspace',
  tlsMount: '/etc/rbs/tls',
} as const;

/**
 * The agent image's group (the Dockerfile's GID): the volume and the TLS files are made
 * readable and writable by it. The user itself is the image's (numeric, non-root) USER.
 */
export const AGENT_FS_GROUP = 10001;

/** A session namespace's Pod Security labels (the chart's admission policy requires them). */
export const POD_SECURITY: Record<string, string> = Object.fromEntries(
  ['enforce', 'audit', 'warn'].flatMap((mode) => [
    [`pod-security.kubernetes.io/${mode}`, 'restricted'],
    [`pod-security.kubernetes.io/${mode}-version`, 'latest'],
  ]),
);

/**
 * Address ranges an agent's builds must not reach: the cluster, the VPC, link-local (the metadata
 * server: 169.254.169.254, and GCE's fd20:ce::254 and AWS's fd00:ec2::254, both in fc00::/7).
 */
const PRIVATE_IPV4 = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '169.254.0.0/16'];
const PRIVATE_IPV6 = ['fc00::/7', 'fe80::/10'];
const DNS_PORTS = [
  { protocol: 'UDP', port: 53 },
  { protocol: 'TCP', port: 53 },
];

/** The labels of every object of `release`: what its selectors select, and nothing of another release. */
export function releaseLabels(release: string): Record<string, string> {
  return { [LABEL.managedBy]: MANAGED_BY, [LABEL.release]: release };
}

/** A label selector of `labels` (key=value,...). */
export function selector(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([key, value]) => `${key}=${value}`)
    .join(',');
}

/** Whether an object with `labels` is one of `release`'s. */
export function isOfRelease(labels: Record<string, string> | undefined, release: string): boolean {
  return Object.entries(releaseLabels(release)).every(([key, value]) => labels?.[key] === value);
}

export function sessionLabels(release: string, sessionId: string, volume: string): Record<string, string> {
  return { ...releaseLabels(release), [LABEL.sessionId]: sessionId, [LABEL.volume]: volume };
}

const agentSelector = { [LABEL.name]: AGENT.appName };

export function namespaceObject({ namespace, sessionId, user, volume }: NamespaceSpec, config: KubernetesBackendConfig): V1Namespace {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: {
      name: namespace,
      labels: { ...sessionLabels(config.release, sessionId, volume), ...POD_SECURITY },
      annotations: { [USER_ANNOTATION]: user },
    },
  };
}

/** Everything of the namespace that does not depend on credentials, the volume or the agent's run. */
export function namespaceContents(spec: NamespaceSpec, config: KubernetesBackendConfig): KubernetesObject[] {
  const metadata = (name: string) => ({ name, namespace: spec.namespace, labels: sessionLabels(config.release, spec.sessionId, spec.volume) });
  const { profile } = config;
  const serviceAccount: V1ServiceAccount = {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: metadata(AGENT.name),
    // The agent never calls the Kubernetes API: no token, and no Role.
    automountServiceAccountToken: false,
  };
  const policy = (name: string, policySpec: V1NetworkPolicySpec) => networkPolicy(spec, config, name, policySpec);
  const defaultDeny = policy('default-deny', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
  const from = [
    ...(Object.keys(config.ingress.namespaceLabels).length > 0 ? [{ namespaceSelector: { matchLabels: config.ingress.namespaceLabels } }] : []),
    ...config.ingress.cidrs.map((cidr) => ({ ipBlock: { cidr } })),
  ];
  const agentIngress = policy('agent-ingress', {
    podSelector: { matchLabels: agentSelector },
    policyTypes: ['Ingress'],
    ingress: [{ _from: from, ports: [{ protocol: 'TCP', port: AGENT.port }] }],
  });
  // Builds fetch dependencies: the cluster's DNS and the public internet, but nothing private (other
  // sessions, the control plane, the node's metadata server), not even on port 53.
  const { dns } = config;
  const agentEgress = policy('agent-egress', {
    podSelector: { matchLabels: agentSelector },
    policyTypes: ['Egress'],
    egress: [
      {
        to: [
          { namespaceSelector: { matchLabels: dns.namespaceLabels }, podSelector: { matchLabels: dns.podLabels } },
          ...dns.cidrs.map((cidr) => ({ ipBlock: { cidr } })),
        ],
        ports: DNS_PORTS,
      },
      {
        to: [{ ipBlock: { cidr: '0.0.0.0/0', except: PRIVATE_IPV4 } }, { ipBlock: { cidr: '::/0', except: PRIVATE_IPV6 } }],
      },
    ],
  });
  const quota: V1ResourceQuota = {
    apiVersion: 'v1',
    kind: 'ResourceQuota',
    metadata: metadata('session-quota'),
    spec: {
      hard: {
        'requests.cpu': profile.quota.cpu,
        'limits.cpu': profile.quota.cpu,
        'requests.memory': profile.quota.memory,
        'limits.memory': profile.quota.memory,
      },
    },
  };
  const limits: V1LimitRange = {
    apiVersion: 'v1',
    kind: 'LimitRange',
    metadata: metadata('session-limits'),
    spec: { limits: [{ type: 'Container', defaultRequest: { ...profile.requests }, _default: { ...profile.limits } }] },
  };
  const service: V1Service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: metadata(AGENT.name),
    spec: {
      type: 'ClusterIP',
      selector: agentSelector,
      ports: [{ name: 'agent', protocol: 'TCP', port: AGENT.port, targetPort: AGENT.port, appProtocol: 'grpc' }],
    },
  };
  return [serviceAccount, defaultDeny, agentIngress, agentEgress, ...configuredAgentPolicies(spec, config), quota, limits, service];
}

function networkPolicy(spec: AgentSpec, config: KubernetesBackendConfig, name: string, policySpec: V1NetworkPolicySpec): V1NetworkPolicy {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name, namespace: spec.namespace, labels: sessionLabels(config.release, spec.sessionId, spec.volume) },
    spec: policySpec,
  };
}

/** The agent's policies that only some configurations have (configuredAgentPolicies), by name. */
export const OPTIONAL_AGENT_POLICIES = { metrics: 'agent-metrics', traces: 'agent-traces' } as const;

/**
 * The agent's policies that only some configurations have: Prometheus reaching its metrics port,
 * agents reaching a traces collector. The backend applies them again whenever an agent starts, and
 * deletes those no longer configured, so that a session from before a change of the setting
 * follows it at its next resume.
 */
export function configuredAgentPolicies(spec: AgentSpec, config: KubernetesBackendConfig): V1NetworkPolicy[] {
  const policies: V1NetworkPolicy[] = [];
  const forAgent = (name: string, rules: Omit<V1NetworkPolicySpec, 'podSelector'>) =>
    policies.push(networkPolicy(spec, config, name, { podSelector: { matchLabels: agentSelector }, ...rules }));
  // Prometheus, where configured, reaches the metrics port only.
  const scrapers = config.metricsScrapers;
  if (scrapers) {
    forAgent(OPTIONAL_AGENT_POLICIES.metrics, {
      policyTypes: ['Ingress'],
      ingress: [{ _from: [{ namespaceSelector: { matchLabels: scrapers } }], ports: [{ protocol: 'TCP', port: AGENT.metricsPort }] }],
    });
  }
  // The collector, where configured: the one private address agents may reach, on its port only.
  const collector = config.tracesCollector;
  if (collector) {
    forAgent(OPTIONAL_AGENT_POLICIES.traces, {
      policyTypes: ['Egress'],
      egress: [
        {
          to: [{ namespaceSelector: { matchLabels: collector.namespaceLabels }, podSelector: { matchLabels: collector.podLabels } }],
          ports: [{ protocol: 'TCP', port: collector.port }],
        },
      ],
    });
  }
  return policies;
}

export const GATEWAY_API_GROUP = 'gateway.networking.k8s.io';
export const TLS_ROUTE_TYPE = { apiVersion: `${GATEWAY_API_GROUP}/v1`, kind: 'TLSRoute' } as const;

/** A TLSRoute as this backend writes it (Gateway API v1, standard channel since v1.5). */
export interface TlsRoute extends KubernetesObject {
  spec: {
    parentRefs: Array<{ group: string; kind: string; namespace: string; name: string }>;
    hostnames: string[];
    rules: Array<{ backendRefs: Array<{ group: string; kind: string; name: string; port: number }> }>;
  };
}

/**
 * The session's route through the configured Gateway: connections whose SNI is the session's
 * host go, still encrypted, to the agent's Service. The agent's certificate names that host
 * (agentTlsNames), and the proxy sends it as SNI (lib/grpc/tls.ts tlsChannelOptions).
 */
export function agentRoute({ namespace, sessionId, volume }: AgentSpec, config: KubernetesBackendConfig): TlsRoute {
  if (!config.gateway) throw new Error('agentRoute needs a gateway (RBS_KUBE_GATEWAY)');
  return {
    ...TLS_ROUTE_TYPE,
    metadata: { name: AGENT.name, namespace, labels: sessionLabels(config.release, sessionId, volume) },
    spec: {
      parentRefs: [{ group: GATEWAY_API_GROUP, kind: 'Gateway', ...config.gateway }],
      hostnames: [agentHost(namespace, config)],
      rules: [{ backendRefs: [{ group: '', kind: 'Service', name: AGENT.name, port: AGENT.port }] }],
    },
  };
}

/**
 * The workspace claim, named after the volume: the Filestore CSI driver labels the share's instance
 * with the claim's name, by which the cleanup tells whose it is (lib/filestore/orphans.ts). A volume
 * name is a DNS-1123 label, so it is a valid claim name and GCP label value as it is. `bound` names a
 * retained volume of an earlier session (volumes.ts): the claim asks for exactly that one, at its size.
 */
export function workspaceClaim(
  namespace: string,
  volume: string,
  sessionId: string,
  config: KubernetesBackendConfig,
  bound?: { persistentVolume: string; capacity: string },
): V1PersistentVolumeClaim {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: volume, namespace, labels: sessionLabels(config.release, sessionId, volume) },
    spec: {
      accessModes: ['ReadWriteMany'],
      storageClassName: config.storageClass,
      resources: { requests: { storage: bound?.capacity ?? config.profile.volumeSize } },
      ...(bound ? { volumeName: bound.persistentVolume } : {}),
    },
  };
}

/** Mounted as the files lib/grpc/tls readTlsMaterial(dir, 'agent') reads. */
const TLS_FILES = { 'ca.crt': 'ca.crt', 'tls.crt': 'agent.crt', 'tls.key': 'agent.key' } as const;

export function tlsSecret({ namespace, sessionId, volume }: AgentSpec, credentials: AgentCredentials, config: KubernetesBackendConfig): V1Secret {
  const base64 = (pem: string) => Buffer.from(pem, 'utf8').toString('base64');
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: AGENT.tlsSecret, namespace, labels: sessionLabels(config.release, sessionId, volume) },
    type: 'kubernetes.io/tls',
    data: { 'ca.crt': base64(credentials.caCertPem), 'tls.crt': base64(credentials.certPem), 'tls.key': base64(credentials.keyPem) },
  };
}

/** The agent in pod mode (services/agent/main.ts reads this environment). */
const GENERATION_VARIABLE = 'RBS_AGENT_GENERATION';

/**
 * Whether the pod's agent holds a volume lease (it was given a generation): only then may it be
 * replaced while it might still run. Pods from before the lease run agents that would not stop.
 */
export function isFencedAgent(pod: V1Pod): boolean {
  return pod.spec?.containers.some((c) => c.name === AGENT.name && c.env?.some((e) => e.name === GENERATION_VARIABLE)) ?? false;
}

/**
 * `generation` orders the agents of a volume (services/agent/volume-lease.ts): stamped here, not by
 * the agent, so that a replaced pod's restarted container is never newer than its replacement.
 */
export function agentPod({ namespace, sessionId, volume }: AgentSpec, config: KubernetesBackendConfig, generation: number): V1Pod {
  const { profile } = config;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: AGENT.name,
      namespace,
      labels: { ...sessionLabels(config.release, sessionId, volume), ...agentSelector },
      // Announced only where a scraper may reach the port: elsewhere discovery would fail on every agent.
      ...(config.metricsScrapers
        ? { annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(AGENT.metricsPort), 'prometheus.io/path': '/metrics' } }
        : {}),
    },
    spec: {
      serviceAccountName: AGENT.name,
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: 30,
      securityContext: {
        runAsNonRoot: true,
        fsGroup: AGENT_FS_GROUP,
        fsGroupChangePolicy: 'OnRootMismatch',
        seccompProfile: { type: 'RuntimeDefault' },
      },
      containers: [
        {
          name: AGENT.name,
          image: config.agentImage,
          imagePullPolicy: 'IfNotPresent',
          // Run by the image's entry point (tini) in its WORKDIR, as the Dockerfile's agent target has them.
          args: ['node', 'dist/services/agent/main.js'],
          env: [
            { name: 'RBS_AGENT_SESSION', value: sessionId },
            { name: 'RBS_AGENT_LISTEN', value: `0.0.0.0:${AGENT.port}` },
            { name: 'RBS_AGENT_HEALTH_LISTEN', value: `0.0.0.0:${AGENT.healthPort}` },
            { name: 'RBS_AGENT_METRICS_LISTEN', value: `0.0.0.0:${AGENT.metricsPort}` },
            { name: 'RBS_AGENT_TLS_DIR', value: AGENT.tlsMount },
            { name: 'RBS_AGENT_VOLUME_DIR', value: AGENT.volumeMount },
            { name: GENERATION_VARIABLE, value: String(generation) },
            { name: 'RBS_AGENT_LEASE_MS', value: String(config.agentLeaseMs) },
            // Bazel's per-user state lives with the workspace; scratch stays off the read-only root.
            { name: 'HOME', value: `${AGENT.volumeMount}/home` },
            { name: 'TMPDIR', value: '/tmp' },
            // Not an OTEL_* name: the agent's environment is the builds', whose own telemetry it must not redirect.
            ...(config.tracesCollector ? [{ name: 'RBS_AGENT_TRACES_ENDPOINT', value: config.tracesCollector.endpoint }] : []),
          ],
          ports: [
            { name: 'agent', containerPort: AGENT.port, protocol: 'TCP' },
            { name: 'health', containerPort: AGENT.healthPort, protocol: 'TCP' },
            { name: 'metrics', containerPort: AGENT.metricsPort, protocol: 'TCP' },
          ],
          readinessProbe: { grpc: { port: AGENT.healthPort }, periodSeconds: 2, failureThreshold: 3 },
          resources: { requests: { ...profile.requests }, limits: { ...profile.limits } },
          securityContext: {
            runAsNonRoot: true,
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            capabilities: { drop: ['ALL'] },
            seccompProfile: { type: 'RuntimeDefault' },
          },
          volumeMounts: [
            { name: 'workspace', mountPath: AGENT.volumeMount },
            { name: 'tls', mountPath: AGENT.tlsMount, readOnly: true },
            { name: 'tmp', mountPath: '/tmp' },
          ],
        },
      ],
      volumes: [
        { name: 'workspace', persistentVolumeClaim: { claimName: volume } },
        {
          name: 'tls',
          secret: {
            secretName: AGENT.tlsSecret,
            defaultMode: 0o440,
            items: Object.entries(TLS_FILES).map(([key, path]) => ({ key, path })),
          },
        },
        { name: 'tmp', emptyDir: {} },
      ],
    },
  };
}

/** Where the proxy dials the agent of `namespace`. */
export function agentAddress(namespace: string, config: KubernetesBackendConfig): string {
  return config.agentAddressTemplate.replaceAll('{namespace}', namespace);
}

/** The host of the configured address: a Service name, an IP, or a gateway's SNI host. */
function agentHost(namespace: string, config: KubernetesBackendConfig): string {
  return agentAddress(namespace, config)
    .replace(/:\d+$/, '')
    .replace(/^\[(.*)\]$/, '$1');
}

/** The Service's names, and the host of the configured address. */
export function agentTlsNames(namespace: string, config: KubernetesBackendConfig): AgentTlsNames {
  const host = agentHost(namespace, config);
  const serviceNames = [`${AGENT.name}.${namespace}.svc`, `${AGENT.name}.${namespace}.svc.cluster.local`];
  const isIp = isIP(host) !== 0;
  return {
    dnsNames: [...new Set([...serviceNames, ...(isIp ? [] : [host])])],
    ipAddresses: isIp ? [host] : [],
  };
}
