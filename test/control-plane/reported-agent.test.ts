/**
 * Recovery driven by failure, not by silence: a proxy that cannot reach its agent says so in its
 * next GetServer, and the session probes that agent at once instead of at its next quiet probe.
 * The report is only a hint: an agent that answers is kept, and nobody but the session's user can
 * make it probe.
 */
import { status } from '@grpc/grpc-js';
import { AgentStartError, type AgentProblem } from '../../lib/compute/backend';
import { useStack } from '../harness/stack';

// The periodic probe would take a minute of silence: whatever replaces an agent here is the report.
const stack = useStack({ RBS_AGENT_PROBE_INTERVAL_MS: '60000', RBS_IDLE_TIMEOUT_MS: '600000' });
/** Well under the probe interval: the replacement comes from the report. */
const REPLACED_WITHIN_MS = 15_000;

/** What the session's probes found, in order, from now on (the stack's backend is the worker's). */
function recordProbes(namespace: string): Array<AgentProblem | null> {
  const found: Array<AgentProblem | null> = [];
  const backend = stack().worker.backend;
  const look = backend.agentProblem.bind(backend);
  backend.agentProblem = async (ns, sessionId) => {
    const problem = await look(ns, sessionId);
    if (ns === namespace) found.push(problem);
    return problem;
  };
  return found;
}

test('a dead agent reported by its proxy is replaced at once, and the same GetServer returns the new one', async () => {
  const rae = await stack().client('rae');
  const session = await rae.getServer(stack().workspace());
  const [agent] = await stack().worker.backend.listAgents();
  const probes = recordProbes(session.namespace);
  process.kill(Number(agent.id), 'SIGKILL');

  const reported = performance.now();
  const next = await rae.getServer(session.workspace, { unreachableAgent: session.agentAddress });
  expect(performance.now() - reported).toBeLessThan(REPLACED_WITHIN_MS);
  // Gone is certain: it is not asked again before it is replaced.
  expect(probes).toEqual([{ detail: expect.stringMatching(/is not running/), gone: true }]);
  expect(next).toMatchObject({ sessionId: session.sessionId, phase: 'READY' });
  expect(next.agentAddress).not.toBe(session.agentAddress);
  const agents = await stack().worker.backend.listAgents();
  expect(agents.map((a) => a.id)).not.toContain(agent.id);
  expect(agents).toHaveLength(1);
  await rae.endSession(session.sessionId);
});

test('a reported agent that cannot be replaced: the same GetServer says why, and starts no second session bound to fail alike', async () => {
  const rue = await stack().client('rue');
  const session = await rue.getServer(stack().workspace());
  const [agent] = await stack().worker.backend.listAgents();
  const backend = stack().worker.backend;
  const start = backend.startAgent.bind(backend);
  // As on a lost node that holds the volume: no new agent can be placed.
  backend.startAgent = async (spec) => {
    if (spec.namespace === session.namespace) throw new AgentStartError('Unschedulable', `agent of session ${spec.sessionId} cannot be placed`);
    return start(spec);
  };
  try {
    process.kill(Number(agent.id), 'SIGKILL');
    await expect(rue.getServer(session.workspace, { unreachableAgent: session.agentAddress })).rejects.toMatchObject({
      code: status.FAILED_PRECONDITION,
      details: `session ${session.sessionId} failed: agent restart failed: Unschedulable: agent of session ${session.sessionId} cannot be placed`,
    });
    expect(await rue.listSessions({ includeFinished: true })).toEqual([
      expect.objectContaining({ sessionId: session.sessionId, phase: 'FAILED', endReason: 'agent-restart-failed' }),
    ]);
  } finally {
    backend.startAgent = start;
  }
  // The next command starts afresh.
  const next = await rue.getServer(session.workspace);
  expect(next).toMatchObject({ phase: 'READY' });
  expect(next.sessionId).not.toBe(session.sessionId);
  await rue.endSession(next.sessionId);
});

test('a reported agent that is alive but does not answer is asked thrice, then replaced', async () => {
  const rob = await stack().client('rob');
  const session = await rob.getServer(stack().workspace());
  const [agent] = await stack().worker.backend.listAgents();
  const probes = recordProbes(session.namespace);
  process.kill(Number(agent.id), 'SIGSTOP');
  try {
    const next = await rob.getServer(session.workspace, { unreachableAgent: session.agentAddress });
    expect(next).toMatchObject({ sessionId: session.sessionId, phase: 'READY' });
    expect(next.agentAddress).not.toBe(session.agentAddress);
    expect(probes).toEqual(Array(3).fill({ detail: expect.stringMatching(/health check failed/), gone: false }));
    expect((await stack().worker.backend.listAgents()).map((a) => a.id)).not.toContain(agent.id);
  } finally {
    try {
      process.kill(Number(agent.id), 'SIGCONT'); // in case it survived
    } catch {
      // replaced: gone, as it should be
    }
  }
  await rob.endSession(session.sessionId);
});

test('an agent that answers is kept, whatever the report says; a report of another address is ignored', async () => {
  const ray = await stack().client('ray');
  const session = await ray.getServer(stack().workspace());
  const [agent] = await stack().worker.backend.listAgents();

  const probed = await ray.getServer(session.workspace, { unreachableAgent: session.agentAddress });
  expect(probed).toMatchObject({ sessionId: session.sessionId, agentAddress: session.agentAddress, phase: 'READY' });
  const elsewhere = await ray.getServer(session.workspace, { unreachableAgent: '127.0.0.1:1' });
  expect(elsewhere).toMatchObject({ sessionId: session.sessionId, agentAddress: session.agentAddress });
  expect((await stack().worker.backend.listAgents()).map((a) => a.id)).toEqual([agent.id]);
  await ray.endSession(session.sessionId);
});

test("another user's report reaches only their own session, never this one's agent", async () => {
  const rex = await stack().client('rex');
  const session = await rex.getServer(stack().workspace());
  const [agent] = await stack().worker.backend.listAgents();
  process.kill(Number(agent.id), 'SIGSTOP'); // frozen: a probe would find it dead and replace it
  try {
    const mallory = await stack().client('mallory');
    const theirs = await mallory.getServer(session.workspace, { unreachableAgent: session.agentAddress });
    expect(theirs.sessionId).not.toBe(session.sessionId);
    expect((await rex.describeSession(session.sessionId)).agentAddress).toBe(session.agentAddress);
    expect((await stack().worker.backend.listAgents()).map((a) => a.id)).toContain(agent.id);
    await mallory.endSession(theirs.sessionId);
  } finally {
    process.kill(Number(agent.id), 'SIGCONT');
  }
  await rex.endSession(session.sessionId);
});

test('a report that is no agent address is refused before it reaches the session', async () => {
  const roy = await stack().client('roy');
  const session = await roy.getServer(stack().workspace());
  for (const hostile of ['x'.repeat(64 * 1024), 'host:1\u0000', 'host']) {
    await expect(roy.getServer(session.workspace, { unreachableAgent: hostile })).rejects.toMatchObject({
      code: status.INVALID_ARGUMENT,
      details: expect.stringMatching(/unreachable agent address must be host:port/),
    });
  }
  expect(await roy.describeSession(session.sessionId)).toMatchObject({ phase: 'READY', agentAddress: session.agentAddress });
  await roy.endSession(session.sessionId);
});
