/**
 * The worker on a test cluster as the chart makes it: its ServiceAccount's user (a client certificate with the
 * ServiceAccount's user name and groups, as its token would give), bound to the chart's ClusterRole (BACKEND_RULES)
 * and confined by the chart's ValidatingAdmissionPolicy for its release, both rendered by helm from helm/rbs.
 */
import { KubeConfig, KubernetesObjectApi, type KubernetesObject, type V1ClusterRoleBinding, type V1ValidatingAdmissionPolicy } from '@kubernetes/client-node';
import { type KubeControlPlane } from '../harness/kube-control-plane';
import { waitFor } from '../harness/wait';
import { type ChartRelease, findObject, renderRelease } from './chart-render';

export interface WorkerIdentity {
  release: ChartRelease;
  /** The ServiceAccount's user name, which the policy matches. */
  user: string;
  kubeconfigPath: string;
  /** The ClusterRole, its binding, the ValidatingAdmissionPolicy and its binding, as rendered. */
  objects: KubernetesObject[];
  /** The policy's name, as the apiserver's refusals quote it. */
  policy: string;
}

/** `values`: chart values over the production ones, e.g. agents.storageClass. */
export async function installWorkerIdentity(controlPlane: KubeControlPlane, release: ChartRelease, values: Record<string, string>): Promise<WorkerIdentity> {
  const objects = renderRelease(release, ['templates/rbac.yaml', 'templates/admission-policy.yaml'], values);
  const admin = KubernetesObjectApi.makeApiClient(controlPlane.kubeConfig);
  for (const object of objects) await admin.create(object);
  const [account] = findObject<V1ClusterRoleBinding>(objects, 'ClusterRoleBinding').subjects ?? [];
  const user = `system:serviceaccount:${account.namespace}:${account.name}`;
  const kubeconfigPath = controlPlane.kubeconfigFor(user, ['system:serviceaccounts', `system:serviceaccounts:${account.namespace}`]);
  const policy = findObject<V1ValidatingAdmissionPolicy>(objects, 'ValidatingAdmissionPolicy').metadata!.name!;
  await waitForPolicy(objectApi(kubeconfigPath), policy, (api) => api.create(KUBE_SYSTEM_SECRET, undefined, 'All'));
  return { release, user, kubeconfigPath, objects, policy };
}

export function objectApi(kubeconfigPath: string): KubernetesObjectApi {
  const config = new KubeConfig();
  config.loadFromFile(kubeconfigPath);
  return KubernetesObjectApi.makeApiClient(config);
}

/** A write, as some identity's client makes it. */
export type Request = (api: KubernetesObjectApi) => Promise<unknown>;

/** What the apiserver made of a write: admitted, or refused with its status code and message. */
export type Outcome = { admitted: true } | { admitted: false; code: number; message: string };

export async function outcome(request: Promise<unknown>): Promise<Outcome> {
  try {
    await request;
    return { admitted: true };
  } catch (err) {
    const { code, body, message } = err as { code?: number; body?: unknown; message: string };
    if (code === undefined) throw err; // not the apiserver's answer
    const status = typeof body === 'string' ? (JSON.parse(body) as { message?: string }) : (body as { message?: string } | undefined);
    return { admitted: false, code, message: status?.message ?? message };
  }
}

/** What the apiserver's message says when `policy` denies a request, before the rule's message. */
export const deniedBy = (policy: string) => `ValidatingAdmissionPolicy '${policy}' with binding '${policy}' denied request: `;

/**
 * Waits until the apiserver enforces `policy` (it loads policies asynchronously): until `probe`, a dry run the
 * policy refuses, is refused by it.
 */
export async function waitForPolicy(api: KubernetesObjectApi, policy: string, probe: Request): Promise<void> {
  await waitFor(
    async () => {
      const result = await outcome(probe(api));
      return !result.admitted && result.message.includes(deniedBy(policy));
    },
    30_000,
    `the apiserver to enforce ValidatingAdmissionPolicy ${policy}`,
  );
}

/** The agent's Secret, but in kube-system: the policy refuses it. */
const KUBE_SYSTEM_SECRET = {
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name: 'agent-tls', namespace: 'kube-system' },
  type: 'kubernetes.io/tls',
  data: { 'tls.crt': '', 'tls.key': '' },
} as KubernetesObject;
