/** The control plane's side of the agent's volume lease: what a replacement waits, and the deadlines that allow for it. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig } from '../../lib/config';
import { createSessionWorker } from '../../services/worker/worker';
import { checkReadyTimeoutCoversTakeover, leaseCheckIntervalMs, takeoverWaitMs } from '../../lib/agent-lease';

test('a replacement waits the lease out plus one check of it', () => {
  expect(leaseCheckIntervalMs(30_000)).toBe(3_000);
  expect(takeoverWaitMs(30_000)).toBe(33_000);
  expect(takeoverWaitMs(5_000)).toBe(5_500);
});

test('a readiness deadline shorter than the takeover and a start is refused, naming the lease and where it is set', () => {
  const lease = { ms: 30_000, source: 'RBS_KUBE_AGENT_LEASE_MS' };
  expect(() => checkReadyTimeoutCoversTakeover(20_000, lease)).toThrow(
    'RBS_AGENT_READY_TIMEOUT_MS=20000 is too short: an agent replacing one that may still run waits 33000 ms for it on the volume ' +
      '(its lease: 30000 ms, RBS_KUBE_AGENT_LEASE_MS), then starts; allow at least 43000 ms',
  );
  expect(() => checkReadyTimeoutCoversTakeover(42_999, lease)).toThrow(/allow at least 43000 ms/);
  expect(() => checkReadyTimeoutCoversTakeover(43_000, lease)).not.toThrow();
  expect(() => checkReadyTimeoutCoversTakeover(15_500, { ms: 5_000, source: 'RBS_KUBE_AGENT_LEASE_MS' })).not.toThrow();
});

test('the worker will not start with such a deadline, before it opens anything', async () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-lease-'));
  try {
    const config = loadConfig({ RBS_HOME: home, RBS_AGENT_READY_TIMEOUT_MS: '20000', RBS_TEMPORAL_ADDRESS: '127.0.0.1:1' });
    await expect(createSessionWorker(config)).rejects.toThrow(
      'RBS_AGENT_READY_TIMEOUT_MS=20000 is too short: an agent replacing one that may still run waits 11000 ms for it on the volume (its lease: 10000 ms, fixed for local agents), then starts; allow at least 21000 ms',
    );
    expect(fs.existsSync(path.join(home, 'sessions.sqlite'))).toBe(false);
  } finally {
    fs.rmSync(home, { recursive: true, force: true });
  }
});
