/**
 * The control plane's own ceiling for the Kubernetes benchmark: the objects RBS makes for a session
 * (objects.ts: the namespace and its contents, the workspace claim, the agent's Secret and pod),
 * created for every session at once by a minimal client, the worker's own identity (so RBAC, the
 * admission policy and API priority and fairness treat it alike), with no Temporal, orchestrator,
 * store or retries of RBS in between, until each agent pod is Ready. RBS's sessions per second as a
 * ratio of these is what RBS itself costs.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeConfig, KubernetesObjectApi, type KubernetesObject, type V1Pod, Watch } from '@kubernetes/client-node';
import type { KubernetesBackendConfig } from '../lib/compute/kubernetes/config';
import { AGENT, LABEL, agentPod, namespaceContents, namespaceObject, tlsSecret, workspaceClaim } from '../lib/compute/kubernetes/objects';
import { placementFor } from '../lib/naming';
import type { KubeBackendEnvironment } from '../test/kubernetes/backend-fixture';
import type { CpuUse } from './kubernetes-measures';

const CREDENTIALS = { caCertPem: 'CA PEM', certPem: 'CERT PEM', keyPem: 'KEY PEM' };
/** Until the quota controller has counted a new namespace's quota, pods are refused with "status unknown for quota". */
const QUOTA_RETRY_MS = 100;

export interface CeilingRun {
  burstMs: number;
  readyMs: number[];
  errors: string[];
  cpu: CpuUse;
  namespaces: string[];
}

export async function ceilingRun(
  kube: KubeBackendEnvironment,
  config: KubernetesBackendConfig,
  sessions: number,
  cpu: () => CpuUse,
  timeoutMs: number,
): Promise<CeilingRun> {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(kube.workerKubeconfigPath);
  const api = KubernetesObjectApi.makeApiClient(kubeConfig);
  const specs = Array.from({ length: sessions }, (_, i) => {
    const user = `ceiling${i}`;
    return { ...placementFor(user, `/home/${user}/src`), user, sessionId: randomUUID() };
  });
  const start = performance.now();
  const ready = readyTimes(kube, new Set(specs.map((s) => s.namespace)), start);
  const errors: string[] = [];
  await Promise.all(
    specs.map(async (spec) => {
      try {
        await create(api, namespaceObject(spec, config));
        await Promise.all(namespaceContents(spec, config).map((object) => create(api, object)));
        await create(api, workspaceClaim(spec.namespace, spec.volume, spec.sessionId, config));
        await create(api, tlsSecret(spec, CREDENTIALS, config));
        await create(api, agentPod(spec, config, Date.now()));
      } catch (err) {
        errors.push(`${spec.namespace}: ${(err as { body?: string }).body ?? (err as Error).message}`);
      }
    }),
  );
  const readyMs = await Promise.race([ready.done, sleep(timeoutMs).then(() => ready.sofar())]);
  ready.stop();
  if (readyMs.length < sessions - errors.length) errors.push(`${sessions - errors.length - readyMs.length} agent pods not Ready after ${timeoutMs} ms`);
  return { burstMs: performance.now() - start, readyMs, errors, cpu: cpu(), namespaces: specs.map((s) => s.namespace) };
}

/**
 * Creates `object`, waiting out what any client waits out: 429s of API priority and fairness (as
 * client-go does, after the Retry-After the apiserver gives), and a new namespace's quota not yet counted.
 */
async function create(api: KubernetesObjectApi, object: KubernetesObject): Promise<void> {
  for (;;) {
    try {
      await api.create(object);
      return;
    } catch (err) {
      const { code, body, headers } = err as { code?: number; body?: string; headers?: Record<string, string> };
      if (code === 429) await sleep(Math.max(1, Number(headers?.['retry-after']) || 1) * 1000);
      else if (code === 403 && String(body).includes('status unknown for quota')) await sleep(QUOTA_RETRY_MS);
      else throw err;
    }
  }
}

/** Watches agent pods everywhere (one watch, as a controller would) and notes when each wanted namespace's is Ready. */
function readyTimes(kube: KubeBackendEnvironment, namespaces: Set<string>, start: number) {
  const times = new Map<string, number>();
  let resolveDone: (ms: number[]) => void = () => undefined;
  const done = new Promise<number[]>((resolve) => (resolveDone = resolve));
  const sofar = () => [...times.values()];
  const controller = new Watch(kube.controlPlane.kubeConfig).watch(
    '/api/v1/pods',
    { labelSelector: `${LABEL.name}=${AGENT.appName}` },
    (_type: string, pod: V1Pod) => {
      const namespace = pod.metadata?.namespace ?? '';
      const isReady = pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
      if (isReady && namespaces.has(namespace) && !times.has(namespace)) {
        times.set(namespace, performance.now() - start);
        if (times.size === namespaces.size) resolveDone(sofar());
      }
    },
    () => undefined,
  );
  return {
    done,
    sofar,
    stop: () =>
      void controller.then(
        (c) => c.abort(),
        () => undefined,
      ),
  };
}
