/**
 * The Kubernetes API clients the backend uses, all from one KubeConfig, over one pool of
 * keep-alive connections. client-node 1.4 gives every request a new https.Agent, so each request
 * paid a TCP and TLS handshake at both ends: about 60% of the worker's CPU while provisioning many
 * sessions (bench/kubernetes.ts).
 */
import * as https from 'node:https';
import {
  CoreV1Api,
  KubernetesObjectApi,
  ServerConfiguration,
  Watch,
  createConfiguration,
  type KubeConfig,
  type RequestContext,
  type SecurityAuthentication,
} from '@kubernetes/client-node';

export interface KubeApi {
  kubeConfig: KubeConfig;
  core: CoreV1Api;
  /** Any kind by apiVersion and kind: what server-side apply goes through. */
  objects: KubernetesObjectApi;
  watch: Watch;
}

/** Connections the backend may hold open to the apiserver at once. */
const MAX_SOCKETS = 32;

export function kubeApi(kubeConfig: KubeConfig): KubeApi {
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  const configuration = createConfiguration({
    baseServer: new ServerConfiguration(cluster.server, {}),
    authMethods: { default: pooledConnections(kubeConfig) },
  });
  // Every namespaced object the backend applies names its namespace: no default is needed.
  return { kubeConfig, core: new CoreV1Api(configuration), objects: new KubernetesObjectApi(configuration), watch: new Watch(kubeConfig) };
}

/**
 * The KubeConfig's authentication (headers, fresh tokens), with its per-request agent swapped for one
 * shared keep-alive agent of the same TLS settings (CA, client certificate), made on first use.
 */
function pooledConnections(kubeConfig: KubeConfig): SecurityAuthentication {
  let shared: https.Agent | undefined;
  return {
    getName: () => 'kubeconfig authentication over pooled connections',
    async applySecurityAuthentication(context: RequestContext) {
      await kubeConfig.applySecurityAuthentication(context);
      const agent = context.getAgent();
      if (!(agent instanceof https.Agent)) return; // plain http or a proxy agent: left as it is
      shared ??= new https.Agent({ ...agent.options, keepAlive: true, maxSockets: MAX_SOCKETS });
      context.setAgent(shared);
    },
  };
}
