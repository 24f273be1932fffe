/**
 * The orchestrator's log as an operator reads it: JSON lines, one per event, and an audit line for
 * every refused call, saying who (from the verified certificate), what and why; hostile request
 * bytes are quoted, bounded, and never make a line of their own.
 */
import * as fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { orchestratorLog, useStack } from '../harness/stack';

const stack = useStack();

/** The log's lines so far, each parsed (a line that is not JSON fails the test). */
const lines = (): Array<Record<string, unknown>> =>
  fs
    .readFileSync(orchestratorLog(stack().config), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);

/** The audit lines that appeared while `act` ran. */
async function auditedDuring(act: () => Promise<unknown>): Promise<Array<Record<string, unknown>>> {
  const before = lines().length;
  await act();
  return lines()
    .slice(before)
    .filter((line) => line.audit);
}

let aliceSession: string;

beforeAll(async () => {
  const alice = await stack().client('alice');
  aliceSession = (await alice.getServer(stack().workspace())).sessionId;
});

test("another user's call on alice's session: refused, and the audit line names the caller, the RPC, the session and why", async () => {
  const mallory = await stack().client('mallory');
  const audit = await auditedDuring(() => expect(mallory.describeSession(aliceSession)).rejects.toMatchObject({ code: grpc.status.NOT_FOUND }));
  expect(audit).toEqual([
    expect.objectContaining({
      level: 'warn',
      service: 'orchestrator',
      audit: 'refused',
      rpc: 'DescribeSession',
      code: 'NOT_FOUND',
      caller: { kind: 'user', user: 'mallory', operator: false },
      sessionId: aliceSession,
      reason: expect.stringContaining(aliceSession),
    }),
  ]);
  expect(typeof audit[0].time).toBe('string');
});

test("a proxy's certificate on the orchestrator and a user's operator call: each refused, each audited with who it was", async () => {
  const proxy = await stack().client('alice', { identity: { kind: 'proxy', sessionId: aliceSession, user: 'alice' } });
  const bob = await stack().client('bob');
  const audit = await auditedDuring(async () => {
    await expect(proxy.listSessions()).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    await expect(bob.revokeUser('alice')).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
  });
  expect(audit).toEqual([
    expect.objectContaining({ rpc: 'ListSessions', code: 'PERMISSION_DENIED', caller: { kind: 'proxy', sessionId: aliceSession, user: 'alice' } }),
    expect.objectContaining({ rpc: 'RevokeUser', code: 'PERMISSION_DENIED', caller: { kind: 'user', user: 'bob', operator: false }, targetUser: 'alice' }),
  ]);
});

test('hostile bytes in a request are quoted in its one line, cut short, and forge no line of their own', async () => {
  const mallory = await stack().client('mallory');
  const forged = `x\n{"level":"info","audit":"operator","action":"revoke","operator":"root"}\n${'y'.repeat(10_000)}`;
  const before = lines().length;
  const audit = await auditedDuring(() => expect(mallory.describeSession(forged)).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT }));
  expect(audit).toHaveLength(1);
  expect(audit[0]).toMatchObject({ rpc: 'DescribeSession', code: 'INVALID_ARGUMENT', caller: { user: 'mallory' } });
  expect(audit[0].sessionId).toBe(forged.slice(0, 256));
  expect(
    lines()
      .slice(before)
      .filter((line) => line.operator === 'root'),
  ).toEqual([]);
});

test("an operator's revocation is an audit line too: who revoked whom, and the sessions it ended", async () => {
  const operator = await stack().client('root', { operator: true });
  const audit = await auditedDuring(async () => {
    await operator.revokeUser('carol');
    await operator.unrevokeUser('carol');
  });
  expect(audit).toEqual([
    expect.objectContaining({ level: 'info', audit: 'operator', action: 'revoke', operator: 'root', targetUser: 'carol', endedSessionIds: [] }),
    expect.objectContaining({ level: 'info', audit: 'operator', action: 'unrevoke', operator: 'root', targetUser: 'carol' }),
  ]);
});
