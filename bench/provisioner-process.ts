/**
 * The fake volume provisioner (test/fakes) as a process of its own: `KUBECONFIG=… node provisioner-process.js`
 * (in the environment: a command line naming the control plane's directory would count it as part of it).
 * It stands for the CSI driver's provisioner, which runs in the cluster: the Kubernetes benchmark pins it
 * with the control plane, not with RBS, and counts its CPU on neither side.
 */
import { KubeConfig } from '@kubernetes/client-node';
import { startFakeVolumeProvisioner } from '../test/fakes/fake-volume-provisioner';

export const PROVISIONER_RUNNING = 'fake volume provisioner running';

async function main(): Promise<void> {
  const kubeconfig = process.env.KUBECONFIG;
  if (!kubeconfig) throw new Error('KUBECONFIG must name the control plane admin kubeconfig');
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(kubeconfig);
  const provisioner = await startFakeVolumeProvisioner(kubeConfig);
  const stop = () => void provisioner.stop().finally(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  console.log(PROVISIONER_RUNNING);
}

if (require.main === module) {
  main().catch((err: Error) => {
    console.error(`fake volume provisioner: ${err.stack ?? err.message}`);
    process.exit(1);
  });
}
