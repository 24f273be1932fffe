/**
 * Control-plane benchmark on the local backend against a real Temporal dev server: warm GetServer
 * latency, cold time to READY, and sessions per second with 50 users provisioning at once.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { homePaths, loadConfig } from '../lib/config';
import { OrchestratorClient } from '../lib/grpc/orchestrator-client';
import { startTemporalDevServer } from '../lib/local/temporal-dev-server';
import { CertificateAuthority } from '../lib/pki/ca';
import { runOrchestrator } from '../services/orchestrator/orchestrator';
import { createSessionWorker } from '../services/worker/worker';
import { percentile, report } from './stats';

const WARM_CALLS = 500;
const COLD_SESSIONS = 10;
const CONCURRENT_USERS = 50;

export async function benchControlPlane(): Promise<void> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-bench-'));
  const temporal = await startTemporalDevServer({ logFile: path.join(root, 'temporal.log') });
  const config = loadConfig({ RBS_HOME: path.join(root, 'home'), RBS_TEMPORAL_ADDRESS: temporal.address, RBS_ORCHESTRATOR_LISTEN: '127.0.0.1:0' });
  const worker = await createSessionWorker(config);
  const running = worker.run();
  const orchestrator = await runOrchestrator(config);
  const ca = await CertificateAuthority.loadOrCreate(homePaths(config.home).pki);
  const clientFor = async (user: string) =>
    new OrchestratorClient(orchestrator.address, { caCertPem: ca.certPem, ...(await ca.issue({ kind: 'user', user, operator: false })) });
  const workspace = () => {
    const dir = fs.mkdtempSync(path.join(root, 'ws-'));
    fs.writeFileSync(path.join(dir, 'BUILD'), '');
    return dir;
  };
  const timed = async <T>(fn: () => Promise<T>) => {
    const start = performance.now();
    await fn();
    return performance.now() - start;
  };
  try {
    const alice = await clientFor('alice');
    const cold: number[] = [];
    for (let i = 0; i < COLD_SESSIONS; i++) {
      const ws = workspace();
      cold.push(await timed(() => alice.getServer(ws)));
    }
    const warmWorkspace = workspace();
    await alice.getServer(warmWorkspace);
    const warm: number[] = [];
    for (let i = 0; i < WARM_CALLS; i++) warm.push(await timed(() => alice.getServer(warmWorkspace)));

    const clients = await Promise.all(Array.from({ length: CONCURRENT_USERS }, (_, i) => clientFor(`user${i}`)));
    let errors = 0;
    const burst = await timed(() =>
      Promise.all(clients.map((c) => c.getServer(workspace()).catch(() => void errors++))),
    );
    report('control-plane', [
      { metric: 'warm GetServer p50', value: percentile(warm, 50), unit: 'ms' },
      { metric: 'warm GetServer p99', value: percentile(warm, 99), unit: 'ms', aim: '< 15' },
      { metric: 'cold time to READY p50', value: percentile(cold, 50), unit: 'ms', aim: '< 1000' },
      { metric: 'cold time to READY max', value: Math.max(...cold), unit: 'ms', aim: '< 1000' },
      { metric: `${CONCURRENT_USERS} users at once`, value: (CONCURRENT_USERS * 1000) / burst, unit: 'sessions/s' },
      { metric: `${CONCURRENT_USERS} users at once: errors`, value: errors, unit: 'count', aim: '0' },
    ], { warmCalls: WARM_CALLS, coldSessions: COLD_SESSIONS, concurrentUsers: CONCURRENT_USERS, cpus: os.cpus().length });
    for (const c of [alice, ...clients]) c.close();
  } finally {
    await orchestrator.stop();
    worker.shutdown();
    await running;
    for (const agent of await worker.backend.listAgents()) await worker.backend.killAgent(agent);
    await temporal.child.stop();
    fs.rmSync(root, { recursive: true, force: true });
  }
}
