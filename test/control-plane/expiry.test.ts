import * as fs from 'node:fs';
import * as path from 'node:path';
import { useStack } from '../harness/stack';
import { waitFor } from '../harness/wait';

const stack = useStack({ RBS_IDLE_TIMEOUT_MS: '800', RBS_RETENTION_MS: '1500', RBS_VOLUME_RETENTION_MS: '1000', RBS_VOLUME_SOFT_DELETE_MS: '500' });

test('a session suspended past its retention expires: everything goes, and its volume once unused for the volume retention', async () => {
  const max = await stack().client('max');
  const session = await max.getServer(stack().workspace());
  const volumeDir = path.join(stack().config.home, 'volumes', session.volume);
  expect(fs.existsSync(volumeDir)).toBe(true);

  await waitFor(async () => (await max.describeSession(session.sessionId)).phase === 'ENDED', 15_000, 'expiry');
  expect(await max.describeSession(session.sessionId)).toMatchObject({ failureReason: 'expired after retention', endReason: 'expired' });
  expect(fs.existsSync(path.join(stack().config.home, 'namespaces', session.namespace))).toBe(false);
  expect(await stack().worker.backend.listAgents()).toEqual([]);
  await waitFor(async () => (await stack().worker.store.getVolume(session.volume))?.state === 'REMOVED', 15_000, 'the volume to go');
  expect(fs.existsSync(volumeDir)).toBe(false);
});
