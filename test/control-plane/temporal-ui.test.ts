/**
 * What an operator sees of a session in the Temporal UI, read back through Temporal's own API as
 * the UI reads it: the workflow's static summary and details, and its current details (the
 * `__temporal_workflow_metadata` query).
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import type { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import type { temporal } from '@temporalio/proto';
import { jsonPayload } from '../../lib/temporal/json-payload';
import { localActivityMarker } from '../../lib/temporal/local-activity-marker';
import { SESSION_END_REASON, SESSION_FAILURE, SESSION_PHASE } from '../../lib/temporal/search-attributes';
import { checkSearchAttributes } from '../../services/worker/search-attributes';
import type { cleanupWorkflow } from '../../workflows/cleanup';
import { useStack } from '../harness/stack';
import { waitFor } from '../harness/wait';

const stack = useStack({ RBS_IDLE_TIMEOUT_MS: '60000' });

async function currentDetails(workflowId: string): Promise<string> {
  const metadata = await stack().temporal.workflow.getHandle(workflowId).query<{ currentDetails?: string }>('__temporal_workflow_metadata');
  return metadata.currentDetails ?? '';
}

test("a session's workflow tells who, where and what it does now: its summary, its namespace and volume, its phase, agent, backend and deadlines", async () => {
  const ona = await stack().client('ona');
  const workspace = stack().workspace();
  const session = await ona.getServer(workspace);
  const description = await stack().temporal.workflow.getHandle(session.workflowId).describe();
  expect(await description.staticSummary()).toBe(`\`ona\`: \`${workspace}\``);
  expect(await description.staticDetails()).toBe(`Namespace: \`${session.namespace}\`\n\nVolume: \`${session.volume}\``);

  const ready = await currentDetails(session.workflowId);
  expect(ready).toMatch(/^\*\*READY\*\*\n/);
  expect(ready).toContain(`Agent: \`${session.agentAddress}\` (local backend)`);
  expect(ready).toContain(`Session: \`${session.sessionId}\``);
  const idleUntil = Date.parse(/Suspended if idle until: (\S+)/.exec(ready)![1]);
  const lastActivity = Date.parse(/Last activity: (\S+)/.exec(ready)![1]);
  // The idle timer starts once READY is recorded, a moment after the activity that made it READY.
  expect(idleUntil - lastActivity).toBeGreaterThanOrEqual(60_000);
  expect(idleUntil - lastActivity).toBeLessThanOrEqual(61_000);

  await ona.endSession(session.sessionId);
  await waitFor(async () => (await currentDetails(session.workflowId)).startsWith('**ENDED**'), 10_000, 'the details to say ENDED');
  const ended = await currentDetails(session.workflowId);
  expect(ended).not.toContain('Suspended if idle');
  expect(ended).toContain('End reason: ended');
});

/**
 * The summaries of the steps a workflow took, in order, as the UI shows them beside each: its
 * activities, and its local activities other than the store writes (which have none).
 */
async function activitySummaries(workflowId: string): Promise<string[]> {
  const { events } = await stack().temporal.workflow.getHandle(workflowId).fetchHistory();
  const step = (e: temporal.api.history.v1.IHistoryEvent) =>
    e.activityTaskScheduledEventAttributes || !['recordSession', 'deriveSession', undefined].includes(localActivityMarker(e)?.activityType);
  return events!.filter(step).map((e) => {
    const summary = jsonPayload(e.userMetadata?.summary);
    return typeof summary === 'string' ? summary : '';
  });
}

test('each step of a session is an activity or a local activity whose summary names what it acts on, and an ended session is found by its end reason', async () => {
  const uma = await stack().client('uma');
  const workspace = stack().workspace();
  const session = await uma.getServer(workspace);
  await uma.endSession(session.sessionId);
  expect(await activitySummaries(session.workflowId)).toEqual(
    expect.arrayContaining([
      `create namespace \`${session.namespace}\``,
      `bind volume \`${session.volume}\``,
      `issue the agent's certificate in \`${session.namespace}\``,
      `start the agent in \`${session.namespace}\``,
      `wait for the agent in \`${session.namespace}\` to answer`,
      `sync \`${workspace}\` to volume \`${session.volume}\``,
      `delete namespace \`${session.namespace}\` and everything in it`,
    ]),
  );
  expect((await activitySummaries(session.workflowId)).filter((summary) => summary === '')).toEqual([]);

  const attributes = (await stack().temporal.workflow.getHandle(session.workflowId).describe()).typedSearchAttributes;
  expect(attributes.get(SESSION_PHASE)).toBe('ENDED');
  expect(attributes.get(SESSION_END_REASON)).toBe('ended');
  expect(attributes.get(SESSION_FAILURE)).toBeUndefined();
  await waitFor(
    async () => {
      const query = `RbsEndReason = 'ended' AND RbsSessionId = '${session.sessionId}'`;
      for await (const run of stack().temporal.workflow.list({ query })) return run.workflowId === session.workflowId;
      return false;
    },
    10_000,
    'the session to be listed by its end reason',
  );
});

test('a FAILED session is found by its failure code, never by its text', async () => {
  const ida = await stack().client('ida');
  const gone = stack().workspace();
  fs.rmSync(gone, { recursive: true });
  await expect(ida.getServer(gone)).rejects.toThrow(/does not exist/);
  const [row] = (await stack().worker.store.list({ user: 'ida' })).filter((r) => r.workspace === gone);
  await waitFor(async () => (await stack().temporal.workflow.getHandle(row.workflowId).describe()).status.name === 'COMPLETED', 10_000, 'the run to end');
  const attributes = (await stack().temporal.workflow.getHandle(row.workflowId).describe()).typedSearchAttributes;
  expect(attributes.get(SESSION_PHASE)).toBe('FAILED');
  expect(attributes.get(SESSION_END_REASON)).toBe('provisioning-failed');
  expect(attributes.get(SESSION_FAILURE)).toBe('WorkspaceNotFound');
  expect(await currentDetails(row.workflowId)).toMatch(/Reason: `.*does not exist/);
});

test("a cleanup pass's current details say what it found and removed", async () => {
  const vic = await stack().client('vic');
  const orphan = await vic.getServer(stack().workspace());
  await stack().temporal.workflow.getHandle(orphan.workflowId).terminate('test: orphan it');
  const workflowId = `cleanup-test-${randomUUID()}`;
  await stack().temporal.workflow.execute<typeof cleanupWorkflow>('cleanupWorkflow', { taskQueue: stack().config.temporal.taskQueue, workflowId });
  const details = await currentDetails(workflowId);
  expect(details).toMatch(/^\*\*Removed\*\*/);
  expect(details).toContain(`\`${orphan.namespace}\``);
  // Only while it is still the orphan's: a new session of the same workspace may have made it again (cleanup.test.ts).
  expect(await activitySummaries(workflowId)).toContain(
    `delete namespace \`${orphan.namespace}\` and everything in it, if still the leftover of session \`${orphan.sessionId}\``,
  );
});

test("a worker refuses to start on a namespace that lacks the session workflows' search attributes, naming them and the command", async () => {
  const connection = stack().temporal.connection as Connection;
  const namespace = `rbs-bare-${randomUUID().slice(0, 8)}`;
  await connection.workflowService.registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs('1 day') });
  let error: Error | undefined;
  await waitFor(
    async () => {
      error = await checkSearchAttributes(connection, namespace, () => undefined).then(
        () => undefined,
        (err: Error) => err,
      );
      return error !== undefined && !/not found/i.test(error.message); // a new namespace is seen after a cache refresh
    },
    15_000,
    'the new namespace to be served',
  );
  expect(error!.message).toContain(`Temporal namespace ${namespace} lacks the session workflows' search attributes RbsSessionPhase, RbsUser`);
  expect(error!.message).toContain(`temporal operator search-attribute create --namespace ${namespace} --name RbsSessionPhase --type Keyword`);
  // The stack's own namespace has them all.
  await expect(checkSearchAttributes(connection, stack().config.temporal.namespace, () => undefined)).resolves.toBeUndefined();
});
