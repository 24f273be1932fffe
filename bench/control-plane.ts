/**
 * Control-plane benchmark on the local backend, deployed as in production — Temporal requiring mTLS,
 * a worker and the orchestrator each in its own process — with this process as the client:
 * warm GetServer latency, cold time to READY, and sessions per second with 50 users at once. Each is
 * measured with observability off and on (the Prometheus endpoints, and traces exported over OTLP to
 * a receiver in a process of its own, whose CPU is told apart: in production a collector runs
 * elsewhere), alternately in one run, reported side by side.
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
import { spawn } from 'node:child_process';
import { startSpannerEmulator } from '../test/harness/spanner-emulator';
import { percentile, report } from './stats';

const WARM_CALLS = 500;
const COLD_SESSIONS = 10;
const CONCURRENT_USERS = 50;
/** Observability off, on, off, on: alternated, so that a drift of the machine's speed hits both arms alike. */
const ARMS = [false, true, false, true];
/** Where a session's row lives in the arms above (the embedded default), and in the last arm (production's store, on its emulator). */
const SPANNER_ARM = { RBS_STORE: 'spanner', RBS_SPANNER_PROJECT: 'rbs-bench', RBS_SPANNER_INSTANCE: 'rbs-bench', RBS_SPANNER_DATABASE: 'control-plane' };

interface Measured {
  warm: number[];
  cold: number[];
  first: number;
  burstMs: number;
  errors: number;
  cpuPerSessionMs: number;
  /** The same, less what the OTLP receiver spent. */
  rbsCpuPerSessionMs: number;
}

interface Receiver {
  url: string;
  cpuSeconds(): number;
  stop(): void;
}

/** test/harness/otlp-collector.ts in a process of its own, so that its CPU can be subtracted. */
async function startReceiver(): Promise<Receiver> {
  const harness = path.join(__dirname, '..', 'test', 'harness', 'otlp-collector.js');
  const child = spawn(process.execPath, ['-e', `require(${JSON.stringify(harness)}).startOtlpCollector().then((c) => console.log(c.url))`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString().trim()));
    child.once('exit', (code) => reject(new Error(`the OTLP receiver exited with ${code} before it served`)));
  });
  return {
    url,
    cpuSeconds: () => {
      const fields = fs.readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1].split(' ');
      return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in USER_HZ
    },
    stop: () => void child.kill(),
  };
}

export async function benchControlPlane(): Promise<void> {
  // One bench user takes far more sessions and calls than a developer's share; the stack's
  // processes inherit these.
  Object.assign(process.env, { RBS_LIMIT_ACTIVE_SESSIONS: '1000', RBS_LIMIT_RETAINED_VOLUMES: '1000', RBS_LIMIT_GET_SERVER_PER_MINUTE: '1000000' });
  const arms = { off: [] as Measured[], on: [] as Measured[], 'on, Spanner store': [] as Measured[] };
  const receiver = await startReceiver();
  try {
    for (const on of ARMS) {
      // The stack's processes inherit it: they export their spans.
      if (on) process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
      else delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
      arms[on ? 'on' : 'off'].push(await measure(on, receiver));
    }
    // Production's store: each store call is a round trip, as is each Temporal call.
    const emulator = await startSpannerEmulator();
    Object.assign(process.env, { ...SPANNER_ARM, SPANNER_EMULATOR_HOST: emulator.host });
    try {
      arms['on, Spanner store'].push(await measure(true, receiver));
    } finally {
      for (const name of [...Object.keys(SPANNER_ARM), 'SPANNER_EMULATOR_HOST']) delete process.env[name];
      await emulator.stop();
    }
  } finally {
    delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    receiver.stop();
  }
  const all = (arm: Measured[], pick: (m: Measured) => number[]) => arm.flatMap(pick);
  const sum = (arm: Measured[], pick: (m: Measured) => number) => arm.reduce((total, m) => total + pick(m), 0);
  const rows = (name: keyof typeof arms) => {
    const arm = arms[name];
    const label = (metric: string) => `${metric} (metrics and traces ${name})`;
    return [
      {
        metric: label('warm GetServer p50'),
        value: percentile(
          all(arm, (m) => m.warm),
          50,
        ),
        unit: 'ms',
      },
      {
        metric: label('warm GetServer p99'),
        value: percentile(
          all(arm, (m) => m.warm),
          99,
        ),
        unit: 'ms',
        aim: '≤ 10',
      },
      { metric: label('first session after start'), value: Math.max(...arm.map((m) => m.first)), unit: 'ms' },
      {
        metric: label('cold time to READY p50'),
        value: percentile(
          all(arm, (m) => m.cold),
          50,
        ),
        unit: 'ms',
        aim: '< 1000',
      },
      { metric: label('cold time to READY max'), value: Math.max(...all(arm, (m) => m.cold)), unit: 'ms', aim: '< 1000' },
      { metric: label(`${CONCURRENT_USERS} users at once`), value: (arm.length * CONCURRENT_USERS * 1000) / sum(arm, (m) => m.burstMs), unit: 'sessions/s' },
      { metric: label(`${CONCURRENT_USERS} users at once: errors`), value: sum(arm, (m) => m.errors), unit: 'count', aim: '0' },
      { metric: label(`${CONCURRENT_USERS} users at once: machine CPU per session`), value: sum(arm, (m) => m.cpuPerSessionMs) / arm.length, unit: 'ms' },
      {
        metric: label(`${CONCURRENT_USERS} users at once: CPU per session, less the OTLP receiver`),
        value: sum(arm, (m) => m.rbsCpuPerSessionMs) / arm.length,
        unit: 'ms',
      },
    ];
  };
  const [off, on, spanner] = [rows('off'), rows('on'), rows('on, Spanner store')];
  const ratio = (metric: string) => {
    const value = (rows: typeof on) => rows.find((row) => row.metric.startsWith(metric))!.value;
    return value(on) / value(off);
  };
  report(
    'control-plane',
    [
      ...off,
      ...on,
      ...spanner,
      { metric: 'warm GetServer p99, on ÷ off', value: ratio('warm GetServer p99'), unit: '×' },
      { metric: 'machine CPU per session, on ÷ off', value: ratio(`${CONCURRENT_USERS} users at once: machine CPU`), unit: '×' },
      {
        metric: 'CPU per session less the receiver, on ÷ off',
        value: ratio(`${CONCURRENT_USERS} users at once: CPU per session, less`),
        unit: '×',
        aim: '≤ 1.05',
      },
    ],
    {
      warmCalls: WARM_CALLS,
      coldSessions: COLD_SESSIONS,
      concurrentUsers: CONCURRENT_USERS,
      arms: [...ARMS.map((on) => (on ? 'on' : 'off')), 'on, Spanner store'],
      cpus: os.cpus().length,
    },
  );
}

/** One fresh stack, with or without its Prometheus endpoints (and traces, as the environment says), measured and stopped. */
async function measure(metrics: boolean, receiver: Receiver): Promise<Measured> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-bench-'));
  const config = loadConfig({
    RBS_HOME: path.join(root, 'home'),
    RBS_TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}`,
    RBS_ORCHESTRATOR_LISTEN: `127.0.0.1:${await freePort()}`,
  });
  const stack = await startLocalStack(config, { ui: false, persist: false, metrics, log: (message) => console.error(`control plane: ${message}`) });
  const ca = await CertificateAuthority.loadOrCreate(homePaths(config.home).pki);
  const clients: OrchestratorClient[] = [];
  const clientFor = async (user: string) => {
    const client = new OrchestratorClient(stack.orchestrator, { caCertPem: ca.certPem, ...(await ca.issue({ kind: 'user', user, operator: false })) });
    clients.push(client);
    return client;
  };
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

    const users = await Promise.all(Array.from({ length: CONCURRENT_USERS }, (_, i) => clientFor(`user${i}`)));
    let errors = 0;
    const [cpuBefore, receiverBefore] = [busyCpuSeconds(), receiver.cpuSeconds()];
    const burstMs = await timed(() => Promise.all(users.map((c) => c.getServer(workspace()).catch(() => void errors++))));
    // Spans still batched after the burst are exported within OTEL_BSP_SCHEDULE_DELAY (5 s): counted
    // too. Both arms wait, so that both count the same idle time.
    await new Promise((r) => setTimeout(r, 6_000));
    const cpuMs = (busyCpuSeconds() - cpuBefore) * 1000;
    const receiverMs = (receiver.cpuSeconds() - receiverBefore) * 1000;
    return { warm, cold, first, burstMs, errors, cpuPerSessionMs: cpuMs / CONCURRENT_USERS, rbsCpuPerSessionMs: (cpuMs - receiverMs) / CONCURRENT_USERS };
  } finally {
    for (const c of clients) c.close();
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
