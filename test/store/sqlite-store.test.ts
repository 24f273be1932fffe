import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openSessionStore } from '../../lib/store';
import { describeSessionStoreConformance } from './conformance';

const dir = mkdtempSync(path.join(tmpdir(), 'rbs-sqlite-store-'));
// A subdirectory that does not exist yet: the store must create it.
const file = path.join(dir, 'state', 'sessions.db');

describeSessionStoreConformance(
  'SqliteSessionStore',
  () => openSessionStore({ kind: 'sqlite', file }),
  async () => rmSync(dir, { recursive: true, force: true }),
);

test('a store from before versioned rows and end reasons gains the columns; its rows count as the oldest version, so the next write lands', async () => {
  const old = path.join(mkdtempSync(path.join(tmpdir(), 'rbs-sqlite-old-')), 'sessions.db');
  const db = new Database(old);
  db.exec(`CREATE TABLE sessions (session_id TEXT PRIMARY KEY, workflow_id TEXT NOT NULL, run_id TEXT NOT NULL, user TEXT NOT NULL,
    workspace TEXT NOT NULL, namespace TEXT NOT NULL, volume TEXT NOT NULL, phase TEXT NOT NULL, agent_address TEXT, failure_reason TEXT,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, last_activity_at INTEGER NOT NULL)`);
  db.prepare(`INSERT INTO sessions VALUES ('s-1', 'w', 'r', 'ada', '/ws', 'ns', 'vol', 'READY', '10.0.0.1:1', NULL, 1, 2, 3)`).run();
  db.close();
  const store = await openSessionStore({ kind: 'sqlite', file: old });
  try {
    const row = await store.get('s-1');
    expect(row).toMatchObject({ phase: 'READY', endReason: null, generation: 0, seq: 0 });
    expect(await store.put({ ...row!, phase: 'ENDED', agentAddress: null, endReason: 'ended', generation: 1, seq: 1 })).toBe(true);
    expect(await store.get('s-1')).toMatchObject({ phase: 'ENDED', endReason: 'ended', generation: 1, seq: 1 });
  } finally {
    await store.close();
    rmSync(path.dirname(old), { recursive: true, force: true });
  }
});

test.each([
  ['phase', "UPDATE sessions SET phase = 'HACKED'", /session s-bad has unknown phase "HACKED"/],
  ['end reason', "UPDATE sessions SET end_reason = 'rm -rf'", /session s-bad has unknown end reason "rm -rf"/],
])('a corrupt row (an unknown %s) is reported with its session id, never passed on', async (_, corrupt, message) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'rbs-sqlite-corrupt-'));
  const file = path.join(dir, 'sessions.db');
  const store = await openSessionStore({ kind: 'sqlite', file });
  try {
    const at = Date.now();
    await store.put({
      sessionId: 's-bad',
      workflowId: 'w',
      runId: 'r',
      user: 'ada',
      workspace: '/ws',
      namespace: 'ns',
      volume: 'vol',
      phase: 'ENDED',
      agentAddress: null,
      failureReason: null,
      endReason: 'ended',
      createdAtMs: at,
      updatedAtMs: at,
      lastActivityAtMs: at,
      generation: 1,
      seq: 1,
    });
    const db = new Database(file);
    db.exec(corrupt);
    db.close();
    await expect(store.get('s-bad')).rejects.toThrow(message);
    await expect(store.list({ user: 'ada' })).rejects.toThrow(message);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
