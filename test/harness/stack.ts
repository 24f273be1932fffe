/**
 * A whole control plane for one test file: a fresh RBS_HOME, its own task queue on the shared
 * Temporal dev server, a worker and an orchestrator in this process, and real client certificates.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { homePaths, loadConfig, type RbsConfig } from '../../lib/config';
import { OrchestratorClient } from '../../lib/grpc/orchestrator-client';
import { CertificateAuthority } from '../../lib/pki/ca';
import { temporalConnectionOptions } from '../../lib/temporal/connection';
import type { Identity } from '../../lib/pki/identity';
import { processLogger } from '../../lib/log';
import { runOrchestrator } from '../../services/orchestrator/orchestrator';
import pino from 'pino';
import type { Orchestrator } from '../../services/orchestrator/server';
import { cleanupScheduleId } from '../../services/worker/cleanup-schedule';
import { createSessionWorker, type SessionWorker, type SessionWorkerOptions } from '../../services/worker/worker';

export interface TestStack {
  config: RbsConfig;
  orchestrator: Orchestrator;
  worker: SessionWorker;
  temporal: Client;
  ca: CertificateAuthority;
  /** An orchestrator client holding a certificate for `identity` (a user by default). */
  client(user: string, options?: { operator?: boolean; identity?: Identity; validityMs?: number; notBefore?: Date }): Promise<OrchestratorClient>;
  /** A fresh workspace directory with a few files. */
  workspace(files?: Record<string, string>): string;
  startWorker(): Promise<void>;
  stopWorker(): Promise<void>;
  stop(): Promise<void>;
}

export function testConfig(env: Record<string, string> = {}): RbsConfig {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-home-'));
  const address = process.env.RBS_TEST_TEMPORAL_ADDRESS;
  if (!address) throw new Error('RBS_TEST_TEMPORAL_ADDRESS is unset: run tests through jest (test/harness/global-setup.ts)');
  return loadConfig({
    RBS_HOME: home,
    RBS_TEMPORAL_ADDRESS: address,
    RBS_TASK_QUEUE: `rbs-test-${randomUUID()}`,
    RBS_ORCHESTRATOR_LISTEN: '127.0.0.1:0',
    RBS_ORPHAN_GRACE_MS: '1',
    ...env,
  });
}

/** What the stack's worker (and its restarts) is built with instead of what the config names: a backend, storage. */
export type StackOptions = SessionWorkerOptions;

export async function startStack(env: Record<string, string> = {}, options: StackOptions = {}): Promise<TestStack> {
  const config = testConfig(env);
  const ca = await CertificateAuthority.loadOrCreate(homePaths(config.home).pki);
  let worker = await createSessionWorker(config, options);
  let running = worker.run();
  // Its JSON lines (audit lines among them) go to <home>/orchestrator.log, where tests read them.
  const orchestrator = await runOrchestrator(config, processLogger('orchestrator', pino.destination({ dest: orchestratorLog(config), sync: true })));
  const connection = await Connection.connect(await temporalConnectionOptions(config.temporal));
  const temporal = new Client({ connection, namespace: config.temporal.namespace });
  const clients: OrchestratorClient[] = [];
  const dirs: string[] = [];
  return {
    config,
    orchestrator,
    get worker() {
      return worker;
    },
    temporal,
    ca,
    async client(user, options = {}) {
      const identity = options.identity ?? { kind: 'user', user, operator: !!options.operator };
      const issued = await ca.issue(identity, { validityMs: options.validityMs, notBefore: options.notBefore });
      const client = new OrchestratorClient(orchestrator.address, { caCertPem: ca.certPem, ...issued });
      clients.push(client);
      return client;
    },
    workspace(files = { BUILD: '# empty\n', 'src/main.txt': 'hello\n' }) {
      const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-ws-')));
      for (const [name, content] of Object.entries(files)) {
        fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
        fs.writeFileSync(path.join(dir, name), content);
      }
      dirs.push(dir);
      return dir;
    },
    async startWorker() {
      worker = await createSessionWorker(config, options);
      running = worker.run();
    },
    async stopWorker() {
      worker.shutdown();
      await running;
    },
    async stop() {
      for (const client of clients) client.close();
      await orchestrator.stop();
      worker.shutdown();
      await running;
      // Agents are detached processes: make sure none outlives the test.
      for (const agent of await worker.backend.listAgents()) await worker.backend.killAgent(agent);
      await temporal.schedule.getHandle(cleanupScheduleId(config.temporal.taskQueue)).delete();
      await connection.close();
      for (const dir of [...dirs, config.home]) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function orchestratorLog(config: RbsConfig): string {
  return path.join(config.home, 'orchestrator.log');
}

/** One stack for the whole test file: started before its tests, stopped after them. */
export function useStack(env: Record<string, string> = {}, options: () => StackOptions = () => ({})): () => TestStack {
  let stack: TestStack | undefined;
  beforeAll(async () => {
    stack = await startStack(env, options());
  });
  afterAll(() => stack?.stop());
  return () => {
    if (!stack) throw new Error('the test stack did not start (see beforeAll)');
    return stack;
  };
}
