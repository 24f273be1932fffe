/** The Kubernetes API clients the backend uses, all from one KubeConfig. */
import { CoreV1Api, KubernetesObjectApi, Watch, type KubeConfig } from '@kubernetes/client-node';

export interface KubeApi {
  kubeConfig: KubeConfig;
  core: CoreV1Api;
  /** Any kind by apiVersion and kind: what server-side apply goes through. */
  objects: KubernetesObjectApi;
  watch: Watch;
}

export function kubeApi(kubeConfig: KubeConfig): KubeApi {
  return {
    kubeConfig,
    core: kubeConfig.makeApiClient(CoreV1Api),
    objects: KubernetesObjectApi.makeApiClient(kubeConfig),
    watch: new Watch(kubeConfig),
  };
}
