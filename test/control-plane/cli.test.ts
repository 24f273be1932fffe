import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { useStack } from '../harness/stack';

const RBS = path.resolve(__dirname, '../../cli/rbs.js');

const stack = useStack();

function rbs(args: string[], user = 'jo'): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = {
    ...process.env,
    RBS_HOME: stack().config.home,
    RBS_ORCHESTRATOR: stack().orchestrator.address,
    RBS_CREDENTIALS: path.join(stack().config.home, 'credentials', Buffer.from(user).toString('hex')),
  };
  return new Promise((resolve) =>
    execFile(process.execPath, [RBS, ...args], { env }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    ),
  );
}

test('login, get-server --json, sessions --json, end', async () => {
  expect(await rbs(['login', '--user', 'jo'])).toMatchObject({ code: 0, stdout: expect.stringContaining("logged in as 'jo'") });
  const workspace = stack().workspace();

  const got = await rbs(['get-server', '--workspace', workspace, '--json']);
  expect(got.code).toBe(0);
  const session = JSON.parse(got.stdout);
  expect(session).toMatchObject({ state: 'READY', workspace, namespace: expect.stringMatching(/^jo-rbs-/), agentAddress: expect.any(String) });

  const human = await rbs(['get-server', '--workspace', workspace]);
  expect(human.stdout).toContain(`session ${session.sessionId} is READY`);

  const listed = JSON.parse((await rbs(['sessions', '--json'])).stdout);
  expect(listed).toEqual([expect.objectContaining({ sessionId: session.sessionId, state: 'READY', lastActivity: expect.any(String) })]);

  expect(await rbs(['end', session.sessionId])).toMatchObject({ code: 0, stdout: `session ${session.sessionId} is ENDED\n` });
  expect(JSON.parse((await rbs(['sessions', '--json'])).stdout)).toEqual([]);

  const described = await rbs(['describe', session.sessionId]);
  expect(described.code).toBe(0);
  expect(described.stdout).toContain(`session ${session.sessionId} of jo, workspace ${workspace}\nstarted `);
  expect(described.stdout).toContain('now ENDED (ended)');
  expect(described.stdout).toMatch(/\nPROVISIONING_SYNC +\+\d+\.\d{3} s +\d+\.\d{3} s\n/);
  expect(described.stdout).toMatch(/\nREADY +\+\S+ s +\S+ s\nENDING /);
  expect(described.stdout).toMatch(/completed +sync `/);
  expect(JSON.parse((await rbs(['describe', session.sessionId, '--json'])).stdout)).toMatchObject({ endReason: 'ended', earlierRunsOmitted: false });

  // The session is over; its volume stays, measured as it was released, until unused for the retention period.
  let volumes: Array<Record<string, unknown>> = [];
  for (let i = 0; i < 50 && !(volumes[0]?.removeAt as string | null); i++) {
    volumes = JSON.parse((await rbs(['volumes', '--json'])).stdout);
    await new Promise((r) => setTimeout(r, 100));
  }
  expect(volumes).toEqual([
    expect.objectContaining({
      volume: session.volume,
      state: 'PRESENT',
      pinned: false,
      workspace,
      sizeBytes: expect.any(Number),
      removeAt: expect.any(String),
    }),
  ]);
  const table = (await rbs(['volumes'])).stdout.split('\n');
  expect(table[0]).toMatch(/^VOLUME +STATE +SIZE +USER +LAST USED +NEXT +WORKSPACE$/);
  expect(table[1]).toMatch(new RegExp(`^${session.volume} +PRESENT +\\d+(\\.\\d)?(B|Ki|Mi) +jo +\\S+ +trashed after \\S+ unless used +${workspace}$`));
  expect(await rbs(['admin', 'pin', session.volume])).toMatchObject({ code: 1, stderr: expect.stringContaining('PERMISSION_DENIED') });
});

test('bad input exits 2 with a clear message and creates nothing', async () => {
  expect(await rbs(['login', '--user', 'a/b'])).toMatchObject({ code: 2, stderr: expect.stringContaining("user name contains '/'") });
  expect(await rbs(['login', '--user', ''])).toMatchObject({ code: 2 });
  expect(await rbs(['frobnicate'])).toMatchObject({ code: 2, stderr: expect.stringContaining("unknown command 'frobnicate'") });
  await rbs(['login', '--user', 'kim'], 'kim');
  expect(await rbs(['get-server', '--workspace', '/does/not/exist'], 'kim')).toMatchObject({ code: 2, stderr: expect.stringContaining('does not exist') });
  expect(await rbs(['end', 'nope'], 'kim')).toMatchObject({ code: 2, stderr: expect.stringContaining('INVALID_ARGUMENT') });
  expect(await rbs(['describe'], 'kim')).toMatchObject({ code: 2, stderr: expect.stringContaining('usage: rbs describe SESSION') });
  expect(await rbs(['describe', 'nope'], 'kim')).toMatchObject({ code: 2, stderr: expect.stringContaining('INVALID_ARGUMENT') });
  expect(await rbs(['sessions', '--all'], 'kim')).toMatchObject({ code: 1, stderr: expect.stringContaining('PERMISSION_DENIED') });
  expect(await rbs(['sessions'], 'nobody')).toMatchObject({ code: 2, stderr: expect.stringContaining('not logged in') });
  expect(fs.readdirSync(path.join(stack().config.home, 'namespaces'), { withFileTypes: true }).filter((d) => d.name.startsWith('kim'))).toEqual([]);
});
