/**
 * Control-plane benchmark on the local backend, deployed as in production — Temporal requiring mTLS,
 * a worker and the orchestrator each in its own process — with this process as the client:
 * warm GetServer latency, cold time to READY, and sessions per second with 50 users at once.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { LocalBackend, defaultAgentCommand } from '../lib/compute/local-backend';
import { homePaths, loadConfig } from '../lib/config';
import { OrchestratorClient } from '../lib/grpc/orchestrator-client';
import { freePort } from '../lib/local/ports';
import { startLocalStack } from '../lib/local/stack';
import { CertificateAuthority } from '../lib/pki/ca';
import { percentile, report } from './stats';

const WARM_CALLS = 500;
const COLD_SESSIONS = 10;
const CONCURRENT_USERS = 50;

export async function benchControlPlane(): Promise<void> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-bench-'));
  const config = loadConfig({
    RBS_HOME: path.join(root, 'home'),
    RBS_TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}`,
    RBS_ORCHESTRATOR_LISTEN: `127.0.0.1:${await freePort()}`,
  });
  // One bench user takes far more sessions and calls than a developer's share; the stack's
  // processes inherit these.
  Object.assign(process.env, { RBS_LIMIT_ACTIVE_SESSIONS: '1000', RBS_LIMIT_RETAINED_VOLUMES: '1000', RBS_LIMIT_GET_SERVER_PER_MINUTE: '1000000' });
  const stack = await startLocalStack(config, { ui: false, persist: false, log: (message) => console.error(`control plane: ${message}`) });
  const ca = await CertificateAuthority.loadOrCreate(homePaths(config.home).pki);
  const clientFor = async (user: string) =>
    new OrchestratorClient(stack.orchestrator, { caCertPem: ca.certPem, ...(await ca.issue({ kind: 'user', user, operator: false })) });
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
    // The first session after start pays for warming up every process; report it apart.
    const ws0 = workspace();
    const first = await timed(() => alice.getServer(ws0));
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
    const cpuBefore = busyCpuSeconds();
    const burst = await timed(() => Promise.all(clients.map((c) => c.getServer(workspace()).catch(() => void errors++))));
    const cpuPerSession = (busyCpuSeconds() - cpuBefore) / CONCURRENT_USERS;
    report(
      'control-plane',
      [
        { metric: 'warm GetServer p50', value: percentile(warm, 50), unit: 'ms' },
        { metric: 'warm GetServer p99', value: percentile(warm, 99), unit: 'ms', aim: '< 15' },
        { metric: 'first session after start', value: first, unit: 'ms' },
        { metric: 'cold time to READY p50', value: percentile(cold, 50), unit: 'ms', aim: '< 1000' },
        { metric: 'cold time to READY max', value: Math.max(...cold), unit: 'ms', aim: '< 1000' },
        { metric: `${CONCURRENT_USERS} users at once`, value: (CONCURRENT_USERS * 1000) / burst, unit: 'sessions/s' },
        { metric: `${CONCURRENT_USERS} users at once: errors`, value: errors, unit: 'count', aim: '0' },
        { metric: `${CONCURRENT_USERS} users at once: machine CPU per session`, value: cpuPerSession * 1000, unit: 'ms' },
      ],
      { warmCalls: WARM_CALLS, coldSessions: COLD_SESSIONS, concurrentUsers: CONCURRENT_USERS, cpus: os.cpus().length },
    );
    for (const c of [alice, ...clients]) c.close();
  } finally {
    await stack.stop();
    const backend = new LocalBackend({ home: config.home, agentCommand: defaultAgentCommand() });
    for (const agent of await backend.listAgents()) await backend.killAgent(agent);
    fs.rmSync(root, { recursive: true, force: true });
  }
}

/** CPU time the whole machine spent busy so far (from /proc/stat), in seconds. */
function busyCpuSeconds(): number {
  const [, ...ticks] = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
  const idle = ticks[3] + ticks[4]; // idle + iowait
  return (ticks.reduce((a, b) => a + b, 0) - idle) / 100; // USER_HZ is 100 on Linux
}
