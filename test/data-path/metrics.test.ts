/**
 * Operators' metrics, end to end: a real build through the stock client, proxy, agent and Bazel, then
 * every Prometheus endpoint (orchestrator, worker with the Temporal SDK's own, and the session's agent)
 * scraped and judged by promlint, and what the build did found in the numbers.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { AgentInfo } from '../../lib/compute/local-backend';
import { freePort } from '../../lib/local/ports';
import { cleanupScheduleId } from '../../services/worker/cleanup-schedule';
import { lint, scrape, valueOf } from '../harness/prometheus';
import { startStack, type TestStack } from '../harness/stack';
import { type BazelWorkspace, workspaceOfNewUser } from './fixture';

jest.setTimeout(180_000);

let stack: TestStack;
let ws: BazelWorkspace;

beforeAll(async () => {
  stack = await startStack({ RBS_ORCHESTRATOR_METRICS_LISTEN: '127.0.0.1:0', RBS_WORKER_METRICS_LISTEN: `127.0.0.1:${await freePort()}` });
  ws = await workspaceOfNewUser(stack, 'metrics');
});
afterAll(async () => {
  ws?.destroy();
  await stack?.stop();
});

const endpoints = () => {
  const agents = fs
    .readdirSync(path.join(stack.config.home, 'namespaces'))
    .map((ns) => path.join(stack.config.home, 'namespaces', ns, 'agent.json'))
    .filter((file) => fs.existsSync(file))
    .map((file) => (JSON.parse(fs.readFileSync(file, 'utf8')) as AgentInfo).metricsAddress);
  if (agents.length !== 1 || !agents[0]) throw new Error(`expected one agent with a metrics address, found ${JSON.stringify(agents)}`);
  return { orchestrator: stack.orchestrator.metricsAddress!, worker: stack.config.metrics.worker!, agent: agents[0] };
};

test('after a build, every endpoint passes promlint and tells what happened: GetServer, the session by phase and step, the sync, the command', async () => {
  expect((await ws.bazel(['build', ...ws.buildOptions, '//:gen'])).code).toBe(0);
  expect((await ws.bazel(['build', ...ws.buildOptions, '//broken:x'])).code).toBe(1);
  await (await stack.client('metrics')).getServer(ws.workspace); // READY in the store: the fast path
  const addresses = endpoints();
  const [orchestrator, worker, agent] = await Promise.all([scrape(addresses.orchestrator), scrape(addresses.worker), scrape(addresses.agent)]);
  for (const exposition of [orchestrator, worker, agent]) expect(lint(exposition)).toEqual({ parses: true, problems: [] });

  expect(valueOf(orchestrator, 'rbs_orchestrator_get_server_duration_seconds_count', { path: 'slow' })).toBeGreaterThanOrEqual(1);
  expect(valueOf(orchestrator, 'rbs_orchestrator_get_server_duration_seconds_count', { path: 'fast' })).toBeGreaterThanOrEqual(1);
  expect(valueOf(orchestrator, 'rbs_sessions', { phase: 'READY' })).toBe(1);
  expect(valueOf(orchestrator, 'rbs_sessions', { phase: 'PROVISIONING_SYNC' })).toBe(0);

  const local = { backend: 'local' };
  expect(valueOf(worker, 'rbs_session_time_to_ready_seconds_count', { ...local, start: 'new' })).toBe(1);
  for (const phase of ['PROVISIONING_NAMESPACE', 'PROVISIONING_VOLUME', 'PROVISIONING_AGENT_READY', 'PROVISIONING_SYNC']) {
    expect([phase, valueOf(worker, 'rbs_session_phase_duration_seconds_count', { ...local, phase })]).toEqual([phase, 1]);
  }
  const ready = valueOf(worker, 'rbs_session_time_to_ready_seconds_sum', local);
  const steps = valueOf(worker, 'rbs_session_phase_duration_seconds_sum', local);
  expect(ready).toBeGreaterThan(0);
  // The steps add up to the time to READY, less the wait for the run's first workflow task.
  expect(steps).toBeLessThanOrEqual(ready + 1e-6);
  expect(ready - steps).toBeLessThan(1);
  expect(valueOf(worker, 'temporal_workflow_task_execution_latency_seconds_count')).toBeGreaterThan(0); // the SDK's own

  expect(valueOf(agent, 'rbs_agent_transfer_bytes_total', { kind: 'sync', direction: 'received' })).toBeGreaterThan(0);
  expect(valueOf(agent, 'rbs_agent_transfer_duration_seconds_count', { kind: 'sync', outcome: 'ok' })).toBeGreaterThanOrEqual(1);
  expect(valueOf(agent, 'rbs_agent_transfer_bytes_total', { kind: 'fetch', direction: 'sent' })).toBeGreaterThan(0); // gen.txt came home
  expect(valueOf(agent, 'rbs_agent_command_duration_seconds_count', { command: 'build', exit_code: '0' })).toBe(1);
  expect(valueOf(agent, 'rbs_agent_command_duration_seconds_count', { command: 'build', exit_code: '1' })).toBe(1);
});

test('a refused call is counted by RPC and code: another user describing this session', async () => {
  const addresses = endpoints();
  const [session] = await (await stack.client('metrics')).listSessions();
  const refused = () =>
    scrape(addresses.orchestrator).then((text) => valueOf(text, 'rbs_orchestrator_call_errors_total', { rpc: 'DescribeSession', code: 'NOT_FOUND' }));
  const before = await refused();
  const mallory = await stack.client('mallory');
  await expect(mallory.describeSession(session.sessionId)).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  expect(await refused()).toBe(before + 1);
});

test('a cleanup pass is counted, with what it reconciled by kind', async () => {
  const { worker } = endpoints();
  const passes = async () => valueOf(await scrape(worker), 'rbs_cleanup_passes_total');
  const before = await passes();
  await stack.temporal.schedule.getHandle(cleanupScheduleId(stack.config.temporal.taskQueue)).trigger();
  const deadline = Date.now() + 60_000;
  while ((await passes()) === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
  const exposition = await scrape(worker);
  // At least the one triggered: the schedule may have run one of its own meanwhile.
  expect(valueOf(exposition, 'rbs_cleanup_passes_total')).toBeGreaterThanOrEqual(before + 1);
  // Nothing was left over: every kind is there, at zero.
  for (const kind of ['namespace', 'agent', 'session_row', 'adopted_volume', 'restarted_volume_owner', 'expired_row']) {
    expect(exposition).toContain(`rbs_cleanup_reconciled_total{backend="local",kind="${kind}"`);
  }
  expect(exposition).toMatch(/^rbs_cleanup_orphaned_shares\{backend="local"[^}]*\} 0$/m);
});
