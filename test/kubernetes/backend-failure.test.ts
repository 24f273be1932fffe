/**
 * Agents that cannot start, through the real workflow on the Kubernetes backend: the session ends
 * FAILED with the reason, and the saga's compensation leaves nothing of it in the cluster.
 */
import { status } from '@grpc/grpc-js';
import type { KubernetesBackendConfig } from '../../lib/compute/kubernetes/config';
import { startStack } from '../harness/stack';
import { waitFor } from '../harness/wait';
import { OVER_QUOTA, useKubeBackend } from './backend-fixture';

const kube = useKubeBackend();

test.each<[string, Partial<KubernetesBackendConfig>, RegExp]>([
  ['a quota that forbids the agent pod', { profile: OVER_QUOTA }, /QuotaExceeded: agent of session .* exceeded quota: session-quota/],
  [
    'an agent image that cannot be pulled',
    { agentImage: 'registry.rbs.test/unpullable:1' },
    /ImagePullBackOff: agent of session .* cannot pull image registry.rbs.test\/unpullable:1/,
  ],
])('%s: the session ends FAILED with a clear reason and its namespace is removed', async (_what, config, reason) => {
  const stack = await startStack({}, { backend: kube().backend(config) });
  try {
    const wes = await stack.client('wes');
    await expect(wes.getServer(stack.workspace())).rejects.toMatchObject({ code: status.FAILED_PRECONDITION, details: expect.stringMatching(reason) });
    const [failed] = await wes.listSessions({ includeFinished: true });
    expect(failed).toMatchObject({ phase: 'FAILED', failureReason: expect.stringMatching(reason) });
    expect(await kube().namespace(failed.namespace)).toBeNull();
    expect(await stack.worker.backend.listNamespaces()).toEqual([]);
    // A volume provisioned for the failed session was never retained: it goes with its claim.
    await waitFor(async () => (await kube().admin.core.listPersistentVolume()).items.length === 0, 30_000, 'no PV left');
  } finally {
    await stack.stop();
  }
});
