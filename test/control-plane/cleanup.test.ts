import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { NAMESPACE_FILES } from '../../lib/compute/local-backend';
import { cleanupScheduleId } from '../../services/worker/cleanup-schedule';
import type { cleanupWorkflow } from '../../workflows/cleanup';
import { useStack } from '../harness/stack';
import { waitFor } from '../harness/wait';

const stack = useStack();

test('the cleanup schedule removes orphaned agents, namespaces and store rows, and keeps live sessions', async () => {
  const gina = await stack().client('gina');
  const live = await gina.getServer(stack().workspace());
  // Orphans the way they really happen: an operator terminates workflows, so nothing tears down.
  const orphan = await gina.getServer(stack().workspace());
  const headless = await gina.getServer(stack().workspace());
  for (const s of [orphan, headless]) await stack().temporal.workflow.getHandle(s.workflowId).terminate('test: orphan it');
  // An agent whose namespace directory is gone.
  fs.rmSync(path.join(stack().config.home, 'namespaces', headless.namespace), { recursive: true });
  // A row with no workflow at all.
  const ghost = randomUUID();
  await stack().worker.store.put({
    ...(await stack().worker.store.get(live.sessionId))!,
    sessionId: ghost,
    workflowId: 'rbs-session-ghost-rbs-000000000000',
    updatedAtMs: Date.now() - 60_000,
  });
  expect(await stack().worker.backend.listAgents()).toHaveLength(3);

  await stack().temporal.schedule.getHandle(cleanupScheduleId(stack().config.temporal.taskQueue)).trigger();

  await waitFor(async () => (await stack().worker.backend.listAgents()).length === 1, 20_000, 'orphaned agents to go');
  await waitFor(async () => (await stack().worker.store.get(ghost)) === null, 20_000, 'the ghost row to go');
  expect((await stack().worker.backend.listAgents())[0].namespace).toBe(live.namespace);
  expect((await stack().worker.backend.listNamespaces()).map((n) => n.namespace)).toEqual([live.namespace]);
  expect(await stack().worker.store.get(orphan.sessionId)).toBeNull();
  expect((await gina.describeSession(live.sessionId)).phase).toBe('READY');
  await gina.endSession(live.sessionId);
});

test("a running session's namespace is kept, whoever's id its record bears: the quick steps make it before the session's id is visible", async () => {
  const hal = await stack().client('hal');
  const session = await hal.getServer(stack().workspace());
  // As the namespace is between its creation and the first workflow task's end: its record names a session the
  // workflow listing does not show yet.
  const record = path.join(stack().config.home, 'namespaces', session.namespace, NAMESPACE_FILES.record);
  const mine = fs.readFileSync(record, 'utf8');
  fs.writeFileSync(record, JSON.stringify({ ...JSON.parse(mine), sessionId: randomUUID(), createdAt: new Date(Date.now() - 60_000).toISOString() }));
  try {
    const report = await stack().temporal.workflow.execute<typeof cleanupWorkflow>('cleanupWorkflow', {
      taskQueue: stack().config.temporal.taskQueue,
      workflowId: `cleanup-test-${randomUUID()}`,
    });
    expect(report.namespaces).not.toContain(session.namespace);
    expect((await stack().worker.backend.listNamespaces()).map((n) => n.namespace)).toContain(session.namespace);
  } finally {
    fs.writeFileSync(record, mine);
  }
  await hal.endSession(session.sessionId);
});

test('a new session of the workspace, started while a cleanup pass removes what it found of the old one, keeps its namespace and agent', async () => {
  const ivy = await stack().client('ivy');
  const workspace = stack().workspace();
  const old = await ivy.getServer(workspace);
  await stack().temporal.workflow.getHandle(old.workflowId).terminate('test: orphan it');
  // The new session starts after the pass has looked, as it removes the old agent, before the old namespace.
  const { backend } = stack().worker;
  const killAgent = backend.killAgent.bind(backend);
  let next: Awaited<ReturnType<typeof ivy.getServer>> | undefined;
  jest.spyOn(backend, 'killAgent').mockImplementationOnce(async (agent) => {
    next = await ivy.getServer(workspace);
    return killAgent(agent);
  });
  const workflowId = `cleanup-test-${randomUUID()}`;
  const report = await stack().temporal.workflow.execute<typeof cleanupWorkflow>('cleanupWorkflow', {
    taskQueue: stack().config.temporal.taskQueue,
    workflowId,
  });
  // The pass says what it did: the old agent removed, the namespace (the new session's by then) kept.
  expect(report.agents).toContainEqual(expect.stringMatching(new RegExp(`^${old.namespace}/`)));
  expect(report.namespaces).not.toContain(old.namespace);
  expect(report.spared).toEqual({ namespaces: [old.namespace], agents: [] });
  const { currentDetails } = await stack().temporal.workflow.getHandle(workflowId).query<{ currentDetails?: string }>('__temporal_workflow_metadata');
  expect(currentDetails).not.toMatch(new RegExp(`Namespaces: [^\\n]*${old.namespace}`));
  expect(currentDetails).toContain(`Kept, another session's by the time of removal: \`${old.namespace}\``);
  expect(next!.namespace).toBe(old.namespace);
  expect(await backend.listNamespaces()).toContainEqual(expect.objectContaining({ namespace: next!.namespace, sessionId: next!.sessionId }));
  expect(await backend.listAgents()).toContainEqual(expect.objectContaining({ namespace: next!.namespace, sessionId: next!.sessionId }));
  expect((await ivy.describeSession(next!.sessionId)).phase).toBe('READY');
  await ivy.endSession(next!.sessionId);
});

test('without Filestore the cleanup reports no shares', async () => {
  const report = await stack().temporal.workflow.execute<typeof cleanupWorkflow>('cleanupWorkflow', {
    taskQueue: stack().config.temporal.taskQueue,
    workflowId: `cleanup-test-${randomUUID()}`,
  });
  expect(report.shares).toEqual({ orphans: [], unattributed: [] });
});
