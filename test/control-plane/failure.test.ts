import * as fs from 'node:fs';
import * as path from 'node:path';
import { status } from '@grpc/grpc-js';
import { useStack } from '../harness/stack';

const stack = useStack();

test('a step that fails for good is undone; the session is FAILED with its reason; the next GetServer provisions cleanly', async () => {
  const erin = await stack().client('erin');
  const workspace = stack().workspace();
  fs.rmSync(workspace, { recursive: true }); // the initial sync cannot find it: fails for good

  await expect(erin.getServer(workspace)).rejects.toMatchObject({
    code: status.FAILED_PRECONDITION,
    details: expect.stringContaining(`${workspace}`),
  });
  const [failed] = await erin.listSessions({ includeFinished: true });
  expect(failed).toMatchObject({ phase: 'FAILED', failureReason: expect.stringContaining('does not exist') });
  // The compensations removed the agent and the namespace it had created.
  expect(await stack().worker.backend.listAgents()).toEqual([]);
  expect(fs.existsSync(path.join(stack().config.home, 'namespaces', failed.namespace))).toBe(false);

  fs.mkdirSync(workspace);
  fs.writeFileSync(path.join(workspace, 'BUILD'), '');
  const session = await erin.getServer(workspace);
  expect(session).toMatchObject({ phase: 'READY', namespace: failed.namespace });
  expect(session.sessionId).not.toBe(failed.sessionId);
  await erin.endSession(session.sessionId);
});

test('a namespace removed from under a provisioning session fails it at once, naming the namespace, rather than retrying for ever', async () => {
  const fern = await stack().client('fern');
  const backend = stack().worker.backend;
  const install = backend.installAgentCredentials.bind(backend);
  // As when something else (an operator, a mistaken cleanup) removes it between the quick steps.
  backend.installAgentCredentials = async (spec, credentials) => {
    fs.rmSync(path.join(stack().config.home, 'namespaces', spec.namespace), { recursive: true, force: true });
    return install(spec, credentials);
  };
  try {
    const started = Date.now();
    await expect(fern.getServer(stack().workspace())).rejects.toMatchObject({
      code: status.FAILED_PRECONDITION,
      details: expect.stringMatching(/failed: namespace fern-rbs-\w+ does not exist: it was removed, or never made/),
    });
    expect(Date.now() - started).toBeLessThan(30_000);
    const [failed] = await fern.listSessions({ includeFinished: true });
    expect(failed).toMatchObject({ phase: 'FAILED' });
  } finally {
    backend.installAgentCredentials = install;
  }
});
