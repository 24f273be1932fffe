/**
 * Sessions as Kubernetes namespaces: `<user>-rbs-<hash>` holds the agent pod, its Service,
 * ServiceAccount, TLS Secret, NetworkPolicies, quota and limits, and the claim of the (user,
 * workspace) volume, which outlives the namespace as a retained PV (volumes.ts). Everything is
 * server-side applied, so each step converges however often it runs.
 */
import type { AgentLease } from '../../agent-lease';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeConfig, V1Namespace, V1Pod } from '@kubernetes/client-node';
import {
  AgentStartError,
  type AgentCredentials,
  type AgentProblem,
  type AgentSpec,
  type AgentTlsNames,
  type AgentWait,
  type ComputeBackend,
  type ManagedNamespace,
  type NamespaceSpec,
  type Removal,
  type RunningAgent,
} from '../backend';
import { checkLabel } from '../names';
import { type KubeApi, kubeApi } from './api';
import { apply } from './apply';
import type { KubernetesBackendConfig } from './config';
import {
  AGENT,
  LABEL,
  agentAddress,
  agentPod,
  agentRoute,
  agentTlsNames,
  configuredAgentPolicies,
  isFencedAgent,
  isOfRelease,
  namespaceContents,
  namespaceObject,
  OPTIONAL_AGENT_POLICIES,
  releaseLabels,
  selector,
  tlsSecret,
  TLS_ROUTE_TYPE,
  type TlsRoute,
} from './objects';
import { judgePod, nodeOutage, podRejection, volumeNodeTrouble } from './pod-status';
import { waitForAgentPod } from './readiness';
import { routeRefusal } from './route';
import { deleteIfPresent, deleteJudged, kubeRequest, readOrNull } from './requests';
import { type WorkspaceStorageHooks, WorkspaceVolumes } from './volumes';
import { watchUntilGone } from './watch-one';

export interface KubernetesBackendDeps {
  kubeConfig: KubeConfig;
  config: KubernetesBackendConfig;
  /** lib/filestore's capacity check and backups (the worker wires them when RBS_FILESTORE_* are set); without them the StorageClass decides. */
  workspaceStorage?: WorkspaceStorageHooks;
}

/** How often, and how far apart, a start refused by the quota looks for a concurrent start's pod. */
const WINNER_LOOKS = 10;
const WINNER_LOOK_INTERVAL_MS = 100;

/** Under the teardown activity's one-minute limit: a slower deletion is picked up by its retry. */
const DELETE_WAIT_MS = 45_000;

export class KubernetesBackend implements ComputeBackend {
  readonly kind = 'kubernetes' as const;
  /** The worker cannot read the developer's machine: the proxy's first rsync, over the agent's Sync stream, is a full one. */
  readonly initialSync = 'proxy' as const;
  readonly agentLease: AgentLease;
  private readonly api: KubeApi;
  private readonly config: KubernetesBackendConfig;
  private readonly volumes: WorkspaceVolumes;

  constructor({ kubeConfig, config, workspaceStorage }: KubernetesBackendDeps) {
    this.api = kubeApi(kubeConfig);
    this.config = config;
    this.agentLease = { ms: config.agentLeaseMs, source: 'RBS_KUBE_AGENT_LEASE_MS' };
    this.volumes = new WorkspaceVolumes(this.api, config, workspaceStorage);
  }

  async ensureNamespace(spec: NamespaceSpec): Promise<void> {
    const existing = await this.readNamespace(spec.namespace);
    // One workflow owns a namespace at a time, and a new session starts only once the old one's
    // workflow has finished: a namespace of another session (or one going away) is an orphan.
    if (existing && (sessionOf(existing) !== spec.sessionId || existing.metadata?.deletionTimestamp)) {
      await this.deleteNamespace(spec.namespace);
    }
    await apply(this.api, namespaceObject(spec, this.config));
    await Promise.all(namespaceContents(spec, this.config).map((object) => apply(this.api, object)));
    // After its Service, so that a gateway never judges the route with its backend missing.
    if (this.config.gateway) await apply(this.api, agentRoute(spec, this.config));
  }

  /** The session's facts come from its workflow (AgentSpec): the namespace's labels are not read back. */
  async ensureVolume({ namespace, sessionId, volume }: AgentSpec): Promise<void> {
    await this.volumes.ensure(checkLabel('namespace', namespace), checkLabel('volume', volume), sessionId);
  }

  async agentCertificate(namespace: string): Promise<string | null> {
    checkLabel('namespace', namespace);
    const secret = await readOrNull(`read secret ${namespace}/${AGENT.tlsSecret}`, () =>
      this.api.core.readNamespacedSecret({ name: AGENT.tlsSecret, namespace }),
    );
    const cert = secret?.data?.['tls.crt'];
    return cert ? Buffer.from(cert, 'base64').toString('utf8') : null;
  }

  agentTlsNames(namespace: string): AgentTlsNames {
    return agentTlsNames(checkLabel('namespace', namespace), this.config);
  }

  async installAgentCredentials(spec: AgentSpec, credentials: AgentCredentials): Promise<void> {
    checkLabel('namespace', spec.namespace);
    await apply(this.api, tlsSecret(spec, credentials, this.config));
  }

  async startAgent(spec: AgentSpec): Promise<void> {
    const existing = await this.readAgentPod(spec.namespace);
    if (existing && isLiveAgentOf(existing, spec.sessionId)) return;
    if (existing) await this.stopAgent(spec.namespace); // a pod cannot be restarted in place: replace it
    await this.applyAgentPolicies(spec);
    try {
      await apply(this.api, agentPod(spec, this.config, Date.now()));
    } catch (err) {
      const rejection = podRejection(err, spec.namespace, spec.sessionId);
      // A concurrent start may have won: its pod counts against the quota from its admission,
      // a moment before it is stored, so the winner is looked for a little while.
      const lookFor = rejection?.reason === 'QuotaExceeded' ? WINNER_LOOKS : 1;
      for (let look = 1; look <= lookFor; look++) {
        const winner = await this.readAgentPod(spec.namespace);
        if (winner && isLiveAgentOf(winner, spec.sessionId)) return;
        if (look < lookFor) await sleep(WINNER_LOOK_INTERVAL_MS);
      }
      throw rejection ?? err;
    }
  }

  /** As this worker is configured now: a session from before a change of a setting follows it here, at its next start. */
  private async applyAgentPolicies(spec: AgentSpec): Promise<void> {
    const configured = configuredAgentPolicies(spec, this.config);
    const names = new Set(configured.map((policy) => policy.metadata?.name));
    const { namespace } = spec;
    // One list, rather than a delete of each optional policy at every start whether or not it is there.
    const present = await kubeRequest(`list NetworkPolicies of ${namespace}`, () => this.api.objects.list('networking.k8s.io/v1', 'NetworkPolicy', namespace));
    const optional: ReadonlySet<string> = new Set(Object.values(OPTIONAL_AGENT_POLICIES));
    const stale = present.items.flatMap((policy) => policy.metadata?.name ?? []).filter((name) => optional.has(name) && !names.has(name));
    await Promise.all([
      ...configured.map((policy) => apply(this.api, policy)),
      ...stale.map((name) =>
        deleteIfPresent(`delete NetworkPolicy ${namespace}/${name}`, () =>
          this.api.objects.delete({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name, namespace } }),
        ),
      ),
    ]);
  }

  /** Ready is the pod's Ready condition (the kubelet's gRPC probe); then the volume is kept for good. */
  async waitForAgent(spec: AgentSpec, wait: AgentWait): Promise<string> {
    try {
      await waitForAgentPod(this.api, checkLabel('namespace', spec.namespace), spec.sessionId, wait);
    } catch (err) {
      if (!(err instanceof AgentStartError && err.reason === 'Unschedulable')) throw err;
      throw new AgentStartError('Unschedulable', `${err.detail}${await this.volumeNodeNote(spec.volume)}`);
    }
    await this.checkRoute(spec);
    await this.volumes.retain(spec.namespace, spec.volume);
    return agentAddress(spec.namespace, this.config);
  }

  async agentProblem(namespace: string, sessionId: string): Promise<AgentProblem | null> {
    const pod = await this.readAgentPod(namespace);
    // Its status, Ready or not, is the last its kubelet wrote: a lost node's kubelet writes no more.
    const lost = pod && (await this.lostNode(pod));
    if (lost) return { detail: `agent of session ${sessionId} is gone: ${lost}`, gone: true };
    const verdict = judgePod(pod, sessionId);
    if (verdict.kind === 'ready') return null;
    const problem = verdict.kind === 'failed' ? `${verdict.reason}: ${verdict.detail}` : verdict.progress.detail;
    const gone = verdict.kind === 'failed' || !pod || !isLiveAgentOf(pod, sessionId);
    return { detail: `agent of session ${sessionId} is not ready: ${problem}`, gone };
  }

  /**
   * The worker cannot read the developer's machine: the proxy's first rsync (full, over the
   * agent's mTLS Sync stream) is the initial sync. All this step can ensure is that the volume
   * it will land on is bound; `sourceDir` is a path on the laptop and deliberately not looked at.
   */
  async syncWorkspace(volume: string, _sourceDir: string): Promise<void> {
    await this.volumes.checkBound(checkLabel('volume', volume));
  }

  async stopAgent(namespace: string): Promise<void> {
    checkLabel('namespace', namespace);
    await this.deletePod(namespace, AGENT.name);
  }

  async deleteNamespace(namespace: string, ofSession?: string): Promise<Removal> {
    const read = () => this.readNamespace(namespace);
    const judge = (existing: V1Namespace) => {
      if (!isOfRelease(existing.metadata?.labels, this.config.release)) {
        const labels = selector(releaseLabels(this.config.release));
        throw new Error(`namespace ${namespace} is not managed by rbs release ${this.config.release} (no ${labels} labels): not deleting it`);
      }
      return ofSession === undefined || sessionOf(existing) === ofSession;
    };
    const remove = (_: V1Namespace, preconditions: { uid: string }) => this.api.core.deleteNamespace({ name: namespace, body: { preconditions } });
    const list = () => this.api.core.listNamespace({ fieldSelector: `metadata.name=${namespace}` });
    const gone = (uid: string) => watchUntilGone(this.api, `namespace ${namespace}`, '/api/v1/namespaces', namespace, list, uid, DELETE_WAIT_MS);
    return deleteJudged(`namespace ${namespace}`, read, judge, remove, gone);
  }

  async deleteVolume(volume: string): Promise<void> {
    await this.volumes.remove(checkLabel('volume', volume));
  }

  async volumeSize(volume: string): Promise<number | null> {
    return this.volumes.size(checkLabel('volume', volume));
  }

  async listNamespaces(): Promise<ManagedNamespace[]> {
    const labelSelector = selector(releaseLabels(this.config.release));
    const list = await kubeRequest('list managed namespaces', () => this.api.core.listNamespace({ labelSelector }));
    return list.items.map((ns) => ({
      namespace: ns.metadata!.name!,
      sessionId: sessionOf(ns),
      createdAt: new Date(ns.metadata!.creationTimestamp!),
    }));
  }

  async listAgents(): Promise<RunningAgent[]> {
    const labelSelector = selector({ ...releaseLabels(this.config.release), [LABEL.name]: AGENT.appName });
    const list = await kubeRequest('list agent pods', () => this.api.core.listPodForAllNamespaces({ labelSelector }));
    return list.items.map((pod) => ({
      namespace: pod.metadata!.namespace!,
      sessionId: sessionOf(pod),
      startedAt: new Date(pod.metadata!.creationTimestamp!),
      id: pod.metadata!.name!,
    }));
  }

  async killAgent(agent: RunningAgent): Promise<Removal> {
    return this.deletePod(checkLabel('namespace', agent.namespace), checkLabel('pod', agent.id), agent.sessionId);
  }

  /**
   * No kubelet confirms a graceful deletion on a node that no longer exists or answers: such a pod
   * is deleted at once (grace 0), as Kubernetes's own pod garbage collector does for a deleted node,
   * only sooner. On a node that is only cut off, its agent may still run: the volume lease fences it.
   * With `ofSession`, only that session's pod goes, not one a new session started since under its name.
   */
  private async deletePod(namespace: string, name: string, ofSession?: string): Promise<Removal> {
    const read = () => readOrNull(`read pod ${namespace}/${name}`, () => this.api.core.readNamespacedPod({ name, namespace }));
    const judge = (pod: V1Pod) => ofSession === undefined || sessionOf(pod) === ofSession;
    const remove = async (pod: V1Pod, preconditions: { uid: string }) => {
      const gracePeriodSeconds = (await this.lostNode(pod)) ? 0 : undefined;
      // A request body replaces the query's options: the grace period goes in it too.
      return this.api.core.deleteNamespacedPod({ name, namespace, body: { gracePeriodSeconds, preconditions } });
    };
    const what = `pod ${namespace}/${name}`;
    const list = () => this.api.core.listNamespacedPod({ namespace, fieldSelector: `metadata.name=${name}` });
    const gone = (uid: string) => watchUntilGone(this.api, what, `/api/v1/namespaces/${namespace}/pods`, name, list, uid, DELETE_WAIT_MS);
    return deleteJudged(what, read, judge, remove, gone);
  }

  /**
   * Why the node a pod is bound to counts as lost (its Node deleted, as with its VM, or its kubelet
   * silent for NODE_LOST_AFTER_MS, if the pod's agent holds a volume lease), or null.
   */
  private async lostNode(pod: V1Pod): Promise<string | null> {
    const name = pod.spec?.nodeName;
    if (!name) return null;
    const node = await readOrNull(`read node ${name}`, () => this.api.core.readNode({ name }));
    if (!node) return `its node ${name} no longer exists`;
    return isFencedAgent(pod) ? nodeOutage(node, Date.now()) : null;
  }

  /**
   * With a gateway: fails for good when the gateway refuses the session's route (route.ts), and
   * puts back a route someone deleted since ensureNamespace.
   */
  private async checkRoute(spec: AgentSpec): Promise<void> {
    const { gateway } = this.config;
    if (!gateway) return;
    const { namespace, sessionId } = spec;
    const header = { ...TLS_ROUTE_TYPE, metadata: { name: AGENT.name, namespace } };
    const route = await readOrNull(`read TLSRoute ${namespace}/${AGENT.name}`, () => this.api.objects.read<TlsRoute>(header));
    if (!route) {
      await apply(this.api, agentRoute(spec, this.config));
      return;
    }
    const refusal = routeRefusal(route, gateway);
    if (refusal) throw new AgentStartError('RouteRejected', `agent of session ${sessionId} in ${namespace}: ${refusal}`);
  }

  /**
   * '; its volume V can only be mounted on node N, and N …' when that is why no node takes the agent (a
   * local volume whose node died, say), else ''. Only an explanation: a failed look leaves it unsaid.
   */
  private async volumeNodeNote(volume: string): Promise<string> {
    try {
      const name = await this.volumes.node(volume);
      if (!name) return '';
      const node = await readOrNull(`read node ${name}`, () => this.api.core.readNode({ name }));
      const trouble = volumeNodeTrouble(node, name, Date.now());
      return trouble ? `; its volume ${volume} can only be mounted on node ${name}, and ${trouble}` : '';
    } catch {
      return '';
    }
  }

  private readAgentPod(namespace: string): Promise<V1Pod | null> {
    checkLabel('namespace', namespace);
    return readOrNull(`read pod ${namespace}/${AGENT.name}`, () => this.api.core.readNamespacedPod({ name: AGENT.name, namespace }));
  }

  private readNamespace(namespace: string): Promise<V1Namespace | null> {
    checkLabel('namespace', namespace);
    return readOrNull(`read namespace ${namespace}`, () => this.api.core.readNamespace({ name: namespace }));
  }
}

/** The session's agent pod, neither ended nor going away. */
function isLiveAgentOf(pod: V1Pod, sessionId: string): boolean {
  const ended = pod.status?.phase === 'Failed' || pod.status?.phase === 'Succeeded';
  return pod.metadata?.labels?.[LABEL.sessionId] === sessionId && !ended && !pod.metadata?.deletionTimestamp;
}

/** The session a namespace or pod is labelled for; '' when it is not. */
function sessionOf(object: V1Namespace | V1Pod): string {
  return object.metadata?.labels?.[LABEL.sessionId] ?? '';
}
