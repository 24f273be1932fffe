/** Gateway API's standard-channel CRDs on a test's apiserver, installed as an operator would and waited on until served. */
import * as fs from 'node:fs';
import { ApiextensionsV1Api, KubernetesObjectApi, loadAllYaml, type KubeConfig, type V1CustomResourceDefinition } from '@kubernetes/client-node';
import { gatewayApiCrdFiles } from '../../lib/local/tools';
import { waitFor } from './wait';

export async function installGatewayApi(kubeConfig: KubeConfig): Promise<void> {
  const objects = KubernetesObjectApi.makeApiClient(kubeConfig);
  const crds = gatewayApiCrdFiles().flatMap((file) => loadAllYaml(fs.readFileSync(file, 'utf8')) as V1CustomResourceDefinition[]);
  await Promise.all(crds.map((crd) => objects.create(crd)));
  const extensions = kubeConfig.makeApiClient(ApiextensionsV1Api);
  const allEstablished = async () => {
    const { items } = await extensions.listCustomResourceDefinition();
    const established = items.filter((crd) => crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True'));
    return crds.every((crd) => established.some((e) => e.metadata?.name === crd.metadata?.name));
  };
  await waitFor(allEstablished, 30_000, `the ${crds.length} Gateway API CRDs to be established`);
}
