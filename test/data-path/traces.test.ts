/**
 * Traces, end to end: the first build of a new workspace is one connected trace, from the proxy on
 * the laptop through the orchestrator's GetServer, the workflow's activities and the agent's
 * health check, to the sync and the command on the agent, each part exported over OTLP by its own
 * process. Log lines written inside it carry its trace id.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PROVISIONING_PHASES } from '../../lib/domain';
import { startTracing, type Tracing } from '../../lib/tracing/tracing';
import { type OtlpCollector, type ReceivedSpan, startOtlpCollector } from '../harness/otlp-collector';
import { orchestratorLog, startStack, type TestStack } from '../harness/stack';
import { startTcpRelay } from '../harness/tcp-relay';
import { waitFor } from '../harness/wait';
import { type BazelWorkspace, workspaceOfNewUser } from './fixture';

jest.setTimeout(180_000);

let collector: OtlpCollector;
let tracing: Tracing;
let stack: TestStack;
let ws: BazelWorkspace;

beforeAll(async () => {
  collector = await startOtlpCollector();
  // This process runs the orchestrator and the worker; the proxy and the agent are processes of their own.
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = collector.url;
  process.env.OTEL_BSP_SCHEDULE_DELAY = '100';
  tracing = startTracing('test-stack');
  stack = await startStack();
  ws = await workspaceOfNewUser(stack, 'traces');
});
afterAll(async () => {
  ws?.destroy();
  await stack?.stop();
  await tracing?.shutdown();
  await collector?.close();
  delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  delete process.env.OTEL_BSP_SCHEDULE_DELAY;
});

/** The spans of the trace `find` picks, once `has` holds for them (exporters batch, and the agent's waits up to 5 s). */
async function traceWith(find: (spans: ReceivedSpan[]) => ReceivedSpan | undefined, has: (trace: ReceivedSpan[]) => boolean): Promise<ReceivedSpan[]> {
  let trace: ReceivedSpan[] = [];
  await waitFor(
    () => {
      const anchor = find(collector.spans);
      trace = anchor ? collector.spans.filter((s) => s.traceId === anchor.traceId) : [];
      return trace.length > 0 && has(trace);
    },
    30_000,
    'the trace of the command',
  );
  return trace;
}

const named = (trace: ReceivedSpan[], service: string, name: string | RegExp) =>
  trace.filter((s) => s.service === service && (typeof name === 'string' ? s.name === name : name.test(s.name)));

test('the first build of a workspace is one connected trace: proxy, orchestrator, workflow activities, agent', async () => {
  expect((await ws.bazel(['build', ...ws.buildOptions, '//:gen'])).code).toBe(0);
  const proxy = 'rbs-proxy';
  const controlPlane = 'rbs-test-stack'; // the orchestrator and the worker, in this process
  const agent = 'rbs-agent';
  const trace = await traceWith(
    (spans) => spans.find((s) => s.name === 'rbs.v1.Orchestrator/GetServer'),
    (t) =>
      ['rbs.v1.Agent/Run', 'grpc.health.v1.Health/Check', 'bazel command', 'session phase PROVISIONING_SYNC'].every((name) => t.some((s) => s.name === name)),
  );

  // One root, the command on the laptop; every other span's parent is in the trace.
  const ids = new Set(trace.map((s) => s.spanId));
  const roots = trace.filter((s) => !s.parentSpanId);
  expect(roots.map((s) => [s.service, s.name, s.attributes['bazel.command']])).toEqual([[proxy, 'bazel command', 'build']]);
  expect(trace.filter((s) => s.parentSpanId && !ids.has(s.parentSpanId)).map((s) => `${s.service} ${s.name}`)).toEqual([]);
  const [command] = roots;
  const parentOf = (span: ReceivedSpan) => trace.find((s) => s.spanId === span.parentSpanId);

  // GetServer comes from the command, and starts the session workflow, whose activities follow.
  const [getServer] = named(trace, controlPlane, 'rbs.v1.Orchestrator/GetServer');
  expect(getServer.parentSpanId).toBe(command.spanId);
  const [start] = trace.filter((s) => s.parentSpanId === getServer.spanId && /^(UpdateWith)?StartWorkflow/.test(s.name));
  expect(start).toBeDefined();
  const activities = trace.filter((s) => s.parentSpanId === start.spanId && s.name.startsWith('RunActivity:')).map((s) => s.name);
  for (const step of ['createNamespace', 'claimVolume', 'bindVolume', 'startAgent', 'waitForAgent', 'syncWorkspace']) {
    expect(activities).toContain(`RunActivity:${step}`);
  }
  // The workflow's steps, each a span beside its activities, in order, as long as the session spent in it.
  const phases = trace.filter((s) => s.parentSpanId === start.spanId && s.name.startsWith('session phase ')).sort((a, b) => a.startMs - b.startMs);
  expect(phases.map((s) => [s.name, s.attributes['rbs.next_phase']])).toEqual(
    PROVISIONING_PHASES.map((phase, i) => [`session phase ${phase}`, PROVISIONING_PHASES[i + 1] ?? 'READY']),
  );
  // Each ends where the next begins: at the workflow time the session left it.
  for (const [i, span] of phases.slice(1).entries()) expect(Math.abs(span.startMs - phases[i].endMs)).toBeLessThan(1);
  // The volume's own workflow, started from an activity, joins too.
  expect(named(trace, controlPlane, /^UpdateWithStartWorkflow:claim/).map((s) => parentOf(s)?.name)).toEqual(['RunActivity:claimVolume']);

  // The agent: its health check under the activity that waited for it, the sync and the run under the command.
  expect(named(trace, agent, 'grpc.health.v1.Health/Check').map((s) => parentOf(s)?.name)).toContain('RunActivity:waitForAgent');
  for (const rpc of ['rbs.v1.Agent/Sync', 'rbs.v1.Agent/Run']) {
    expect([rpc, named(trace, agent, rpc).map((s) => s.parentSpanId)]).toEqual([rpc, [command.spanId]]);
  }

  // The orchestrator's line about the session it served carries the trace, and who it served.
  const served = fs
    .readFileSync(orchestratorLog(stack.config), 'utf8')
    .split('\n')
    .filter((line) => line.includes('"session served"'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  expect(served).toContainEqual(
    expect.objectContaining({ rpc: 'GetServer', user: 'traces', path: 'slow', phase: 'READY', sessionId: expect.any(String), trace_id: command.traceId }),
  );

  // The agent's line about the command carries the trace.
  const agentLog = path.join(stack.config.home, 'namespaces', fs.readdirSync(path.join(stack.config.home, 'namespaces'))[0], 'agent.log');
  const ended = fs
    .readFileSync(agentLog, 'utf8')
    .split('\n')
    .filter((line) => line.includes('"command ended"'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  expect(ended).toEqual([expect.objectContaining({ command: 'build', exitCode: 0, trace_id: command.traceId, sessionId: expect.any(String) })]);
});

test('a later command is a trace of its own, and starts no workflow', async () => {
  const before = new Set(collector.spans.map((s) => s.traceId));
  expect((await ws.bazel(['build', ...ws.buildOptions, '//:gen'])).code).toBe(0);
  const trace = await traceWith(
    (spans) => spans.find((s) => !before.has(s.traceId) && s.name === 'bazel command'),
    (t) => t.some((s) => s.name === 'rbs.v1.Agent/Run'),
  );
  expect(trace.filter((s) => !s.parentSpanId).map((s) => s.name)).toEqual(['bazel command']);
  // The session was opened by the proxy's first command: this one reuses it, and starts no workflow.
  expect(trace.filter((s) => /StartWorkflow|RunActivity:createNamespace/.test(s.name))).toEqual([]);
});

test("a developer's OTEL_* setting RBS cannot use costs traces, not the build: the proxy says so in its log and serves", async () => {
  const odd = await workspaceOfNewUser(stack, 'traces-odd', { OTEL_EXPORTER_OTLP_ENDPOINT: 'localhost:4317' });
  try {
    expect((await odd.bazel(['build', ...odd.buildOptions, '//:gen'])).code).toBe(0);
    expect(odd.serverFile('jvm.out')).toContain(
      "RBS proxy: traces are off: OTEL_EXPORTER_OTLP_ENDPOINT must be an http(s) URL of an OTLP collector, got 'localhost:4317'",
    );
  } finally {
    odd.destroy();
  }
});

test('a collector that never answers neither fails nor holds up a command: the proxy drops its spans and says so in its log', async () => {
  const silent = await startTcpRelay(new URL(collector.url).host);
  silent.blackhole(); // connections are taken, and nothing ever comes back
  const down = await workspaceOfNewUser(stack, 'traces-down', { OTEL_EXPORTER_OTLP_ENDPOINT: `http://${silent.address}`, OTEL_EXPORTER_OTLP_TIMEOUT: '1000' });
  try {
    expect((await down.bazel(['build', ...down.buildOptions, '//:gen'])).code).toBe(0);
    expect((await down.bazel(['build', ...down.buildOptions, '//:gen'])).code).toBe(0);
    const warnings = () =>
      (down.serverFile('jvm.out') ?? '')
        .split('\n')
        .filter((line) => line.includes('"component":"opentelemetry"'))
        .map((line) => JSON.parse(line) as { level: string; msg: string });
    await waitFor(() => warnings().length > 0, 20_000, "the proxy's line about spans it could not export");
    expect(warnings()[0]).toMatchObject({ level: 'warn', msg: expect.stringMatching(/^spans not exported or dropped: /) });
  } finally {
    down.destroy();
    silent.close();
  }
});
