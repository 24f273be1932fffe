import { randomBytes } from 'node:crypto';
import { type Database, Spanner } from '@google-cloud/spanner';
import { openSessionStore } from '../../lib/store';
import type { SessionStore } from '../../lib/store/session-store';
import { startSpannerEmulator, type SpannerEmulator } from '../harness/spanner-emulator';
import { describeSessionStoreConformance } from './conformance';

// The global setup normally provides the emulator; start one only when run on our own.
let emulator: SpannerEmulator | undefined;

beforeAll(async () => {
  if (process.env.SPANNER_EMULATOR_HOST) return;
  emulator = await startSpannerEmulator();
  process.env.SPANNER_EMULATOR_HOST = emulator.host;
});

afterAll(async () => {
  if (!emulator) return;
  await emulator.stop();
  delete process.env.SPANNER_EMULATOR_HOST;
});

// Its own database, so other test files can share the instance and the emulator.
const options = { projectId: 'rbs-test', instanceId: 'rbs-test', databaseId: `sessions-${randomBytes(4).toString('hex')}` };

/** Drops the database: the emulator caps how many an instance may hold. */
async function dropDatabase(): Promise<void> {
  const spanner = new Spanner({ projectId: options.projectId });
  try {
    await spanner.instance(options.instanceId).database(options.databaseId).delete();
  } finally {
    await spanner.close();
  }
}

describeSessionStoreConformance('SpannerSessionStore', () => openSessionStore({ kind: 'spanner', ...options }), dropDatabase);

/**
 * A database as an older init() left it (today's schema less what `undo` drops, rows written by
 * `seed`), reopened by today's store for `use`; dropped afterwards.
 */
async function withOlderDatabase(undo: string[], seed: (database: Database) => Promise<void>, use: (store: SessionStore) => Promise<void>): Promise<void> {
  const old = { ...options, databaseId: `old-${randomBytes(4).toString('hex')}` };
  const spanner = new Spanner({ projectId: old.projectId });
  const database = spanner.instance(old.instanceId).database(old.databaseId);
  try {
    await (await openSessionStore({ kind: 'spanner', ...old })).close();
    const [operation] = await database.updateSchema(undo);
    await operation.promise();
    await seed(database);
    const store = await openSessionStore({ kind: 'spanner', ...old });
    try {
      await use(store);
    } finally {
      await store.close();
    }
  } finally {
    await database.delete();
    await spanner.close();
  }
}

test('a database from before revocations gains their table when the store opens it', async () => {
  // A database as init() left it before revocations: the sessions table and its index only.
  await withOlderDatabase(
    ['DROP TABLE Revocations'],
    async () => undefined,
    async (store) => {
      await store.revoke({ user: 'eve', revokedBy: 'ops', revokedAt: new Date(0) });
      expect(await store.revocation('eve')).toEqual({ user: 'eve', revokedBy: 'ops', revokedAt: new Date(0) });
    },
  );
});

test('a database from before versioned session rows and end reasons gains the columns; its rows count as the oldest version', async () => {
  const undo = ['ALTER TABLE Sessions DROP COLUMN Generation', 'ALTER TABLE Sessions DROP COLUMN Seq', 'ALTER TABLE Sessions DROP COLUMN EndReason'];
  const seed = async (database: Database) => {
    const t = new Date(0);
    await database.table('Sessions').insert({
      ...{ SessionId: 's-old', WorkflowId: 'w', RunId: 'r', User: 'ada', Workspace: '/ws', Namespace: 'ns', Volume: 'vol' },
      ...{ Phase: 'READY', AgentAddress: '10.0.0.1:1', FailureReason: null, CreatedAt: t, UpdatedAt: t, LastActivityAt: t },
    });
  };
  await withOlderDatabase(undo, seed, async (store) => {
    const row = await store.get('s-old');
    expect(row).toMatchObject({ phase: 'READY', endReason: null, generation: 0, seq: 0 });
    expect(await store.put({ ...row!, phase: 'ENDED', agentAddress: null, endReason: 'ended', generation: 1, seq: 1 })).toBe(true);
    expect(await store.get('s-old')).toMatchObject({ phase: 'ENDED', endReason: 'ended', generation: 1, seq: 1 });
  });
});

test('a database with versioned rows but from before end reasons gains the column when the store opens it, and ended sessions are written', async () => {
  await withOlderDatabase(
    ['ALTER TABLE Sessions DROP COLUMN EndReason'],
    async () => undefined,
    async (store) => {
      const at = Date.now();
      const ended = {
        ...{ sessionId: 's-ended', workflowId: 'w', runId: 'r', user: 'ada', workspace: '/ws', namespace: 'ns', volume: 'vol' },
        ...{ phase: 'ENDED' as const, agentAddress: null, failureReason: null, endReason: 'ended' as const },
        ...{ createdAtMs: at, updatedAtMs: at, lastActivityAtMs: at, generation: 1, seq: 1 },
      };
      expect(await store.put(ended)).toBe(true);
      expect(await store.get('s-ended')).toEqual(ended);
    },
  );
});
