/**
 * A worker process on the Kubernetes backend (RBS_BACKEND=kubernetes, the kubeconfig of a worker
 * holding BACKEND_RULES) SIGKILLed in the middle of provisioning: its successor converges on one of
 * everything. The worker is the compiled dist/services/worker/main.js, as in production.
 */
import * as fs from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import { homePaths } from '../../lib/config';
import { OrchestratorClient } from '../../lib/grpc/orchestrator-client';
import type { Child } from '../../lib/local/child';
import { CertificateAuthority } from '../../lib/pki/ca';
import { runOrchestrator } from '../../services/orchestrator/orchestrator';
import { cleanupScheduleId } from '../../services/worker/cleanup-schedule';
import { placementFor } from '../../lib/naming';
import { testConfig } from '../harness/stack';
import { startWorkerProcess } from '../harness/worker-process';
import { waitFor } from '../harness/wait';
import { TEST_BACKEND_ENV, useKubeBackend } from './backend-fixture';

const kube = useKubeBackend();

test('a worker killed between provisioning steps: after a restart the session is READY with one of everything', async () => {
  const config = testConfig();
  const startWorker = () => startWorkerProcess(config, { ...TEST_BACKEND_ENV, KUBECONFIG: kube().workerKubeconfigPath });
  const ca = await CertificateAuthority.loadOrCreate(homePaths(config.home).pki);
  const orchestrator = await runOrchestrator(config);
  const xia = new OrchestratorClient(orchestrator.address, { caCertPem: ca.certPem, ...(await ca.issue({ kind: 'user', user: 'xia', operator: false })) });
  const workspace = '/home/xia/src'; // on the developer's machine: the worker never reads it
  const { core, networking } = kube().admin;

  let worker: Child = startWorker();
  try {
    const session = xia.getServer(workspace);
    // Between steps: the namespace and the volume's claim are there, the agent is not yet.
    const { namespace } = placementFor('xia', workspace);
    const claimed = async () => (await core.listNamespacedPersistentVolumeClaim({ namespace })).items.length > 0;
    await waitFor(claimed, 60_000, `the claim in ${namespace}`);
    worker.process.kill('SIGKILL');
    await new Promise((r) => worker.process.once('exit', r));
    worker = startWorker();

    const ready = await session;
    expect(ready.phase).toBe('READY');
    expect(ready.namespace).toBe(namespace);
    const names = async (list: Promise<{ items: Array<{ metadata?: { name?: string } }> }>) => (await list).items.map((o) => o.metadata?.name).sort();
    expect(await names(core.listNamespacedPod({ namespace }))).toEqual(['agent']);
    expect(await names(core.listNamespacedPersistentVolumeClaim({ namespace }))).toEqual([ready.volume]);
    expect(await names(core.listNamespacedSecret({ namespace }))).toEqual(['agent-tls']);
    expect(await names(networking.listNamespacedNetworkPolicy({ namespace }))).toEqual(['agent-egress', 'agent-ingress', 'default-deny']);
    expect(await names(core.listPersistentVolume({ labelSelector: `rbs.dev/volume=${ready.volume}` }))).toHaveLength(1);
    expect(kube().provisioner.created).toHaveLength(1);

    expect((await xia.endSession(ready.sessionId)).phase).toBe('ENDED');
    expect(await kube().namespace(namespace)).toBeNull();
  } finally {
    xia.close();
    await orchestrator.stop();
    await worker.stop();
    const connection = await Connection.connect({ address: config.temporal.address });
    await new Client({ connection }).schedule
      .getHandle(cleanupScheduleId(config.temporal.taskQueue))
      .delete()
      .catch(() => undefined);
    await connection.close();
    fs.rmSync(config.home, { recursive: true, force: true });
  }
});
