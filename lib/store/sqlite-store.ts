/**
 * The embedded default session store: one SQLite file, dates as integer epoch milliseconds.
 * better-sqlite3 is synchronous; the methods are async only to satisfy SessionStore.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { isVolumeState, type SessionRecord, type VolumeRecord } from '../domain';
import { checkedSessionFields, type Revocation, type SessionFilter, type SessionStore, type VolumePin } from './session-store';

/** How long a writer waits for another connection's lock (e.g. a second process) before failing. */
const BUSY_TIMEOUT_MS = 5000;

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS sessions (
    session_id       TEXT PRIMARY KEY,
    workflow_id      TEXT NOT NULL,
    run_id           TEXT NOT NULL,
    user             TEXT NOT NULL,
    workspace        TEXT NOT NULL,
    namespace        TEXT NOT NULL,
    volume           TEXT NOT NULL,
    phase            TEXT NOT NULL,
    agent_address    TEXT,
    failure_reason   TEXT,
    end_reason       TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    last_activity_at INTEGER NOT NULL,
    generation       INTEGER NOT NULL DEFAULT 0,
    seq              INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (user, created_at DESC);
  CREATE TABLE IF NOT EXISTS volumes (
    volume       TEXT PRIMARY KEY,
    user         TEXT NOT NULL,
    workspace    TEXT NOT NULL,
    namespace    TEXT NOT NULL,
    state        TEXT NOT NULL,
    pinned       INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    remove_at    INTEGER,
    size_bytes   INTEGER,
    generation   INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
  );
  CREATE INDEX IF NOT EXISTS volumes_by_user ON volumes (user, last_used_at DESC);
  CREATE TABLE IF NOT EXISTS volume_pins (
    volume    TEXT PRIMARY KEY,
    pinned_by TEXT NOT NULL,
    pinned_at INTEGER NOT NULL
  );
  CREATE TABLE IF NOT EXISTS revocations (
    user       TEXT PRIMARY KEY,
    revoked_by TEXT NOT NULL,
    revoked_at INTEGER NOT NULL
  );
`;

interface Row {
  session_id: string;
  workflow_id: string;
  run_id: string;
  user: string;
  workspace: string;
  namespace: string;
  volume: string;
  phase: string;
  agent_address: string | null;
  failure_reason: string | null;
  end_reason: string | null;
  created_at: number;
  updated_at: number;
  last_activity_at: number;
  generation: number;
  seq: number;
}

function toRow(r: SessionRecord): Row {
  return {
    session_id: r.sessionId,
    workflow_id: r.workflowId,
    run_id: r.runId,
    user: r.user,
    workspace: r.workspace,
    namespace: r.namespace,
    volume: r.volume,
    phase: r.phase,
    agent_address: r.agentAddress,
    failure_reason: r.failureReason,
    end_reason: r.endReason,
    created_at: r.createdAtMs,
    updated_at: r.updatedAtMs,
    last_activity_at: r.lastActivityAtMs,
    generation: r.generation,
    seq: r.seq,
  };
}

function fromRow(row: Row): SessionRecord {
  const { phase, endReason } = checkedSessionFields(row.session_id, row.phase, row.end_reason);
  return {
    sessionId: row.session_id,
    workflowId: row.workflow_id,
    runId: row.run_id,
    user: row.user,
    workspace: row.workspace,
    namespace: row.namespace,
    volume: row.volume,
    phase,
    agentAddress: row.agent_address,
    failureReason: row.failure_reason,
    endReason,
    createdAtMs: row.created_at,
    updatedAtMs: row.updated_at,
    lastActivityAtMs: row.last_activity_at,
    generation: row.generation,
    seq: row.seq,
  };
}

interface VolumeRow {
  volume: string;
  user: string;
  workspace: string;
  namespace: string;
  state: string;
  pinned: number;
  last_used_at: number;
  remove_at: number | null;
  size_bytes: number | null;
  generation: number;
  seq: number;
  updated_at: number;
}

function toVolumeRow(r: VolumeRecord): VolumeRow {
  return {
    volume: r.volume,
    user: r.user,
    workspace: r.workspace,
    namespace: r.namespace,
    state: r.state,
    pinned: r.pinned ? 1 : 0,
    last_used_at: r.lastUsedAtMs,
    remove_at: r.removeAtMs,
    size_bytes: r.sizeBytes,
    generation: r.generation,
    seq: r.seq,
    updated_at: r.updatedAtMs,
  };
}

function fromVolumeRow(row: VolumeRow): VolumeRecord {
  if (!isVolumeState(row.state)) throw new Error(`volume ${row.volume} has unknown state ${JSON.stringify(row.state)}`);
  return {
    volume: row.volume,
    user: row.user,
    workspace: row.workspace,
    namespace: row.namespace,
    state: row.state,
    pinned: row.pinned === 1,
    lastUsedAtMs: row.last_used_at,
    removeAtMs: row.remove_at,
    sizeBytes: row.size_bytes,
    generation: row.generation,
    seq: row.seq,
    updatedAtMs: row.updated_at,
  };
}

export class SqliteSessionStore implements SessionStore {
  private readonly db: Database.Database;
  /** Prepared once per text: preparing took more of a busy worker's time than running them. */
  private readonly statements = new Map<string, Database.Statement>();

  constructor(file: string) {
    if (file !== ':memory:') mkdirSync(path.dirname(file), { recursive: true });
    // `timeout` is SQLite's busy_timeout.
    this.db = new Database(file, { timeout: BUSY_TIMEOUT_MS });
    // WAL lets readers proceed while a writer commits.
    this.db.pragma('journal_mode = WAL');
  }

  private statement(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (!statement) this.statements.set(sql, (statement = this.db.prepare(sql)));
    return statement;
  }

  async init(): Promise<void> {
    this.db.exec(SCHEMA);
    // A store from before versioned session rows (its rows count as the oldest version), or before end reasons.
    const columns = (this.db.prepare('PRAGMA table_info(sessions)').all() as Array<{ name: string }>).map((c) => c.name);
    for (const [column, type] of [
      ['generation', 'INTEGER NOT NULL DEFAULT 0'],
      ['seq', 'INTEGER NOT NULL DEFAULT 0'],
      ['end_reason', 'TEXT'],
    ]) {
      if (columns.includes(column)) continue;
      try {
        this.db.exec(`ALTER TABLE sessions ADD COLUMN ${column} ${type}`);
      } catch (err) {
        // Another process opening the same store added it a moment ago.
        if (!/duplicate column name/.test((err as Error).message)) throw err;
      }
    }
  }

  async put(record: SessionRecord): Promise<boolean> {
    return this.versionedUpsert('sessions', 'session_id', { ...toRow(record) });
  }

  async get(sessionId: string): Promise<SessionRecord | null> {
    const row = this.statement('SELECT * FROM sessions WHERE session_id = ?').get(sessionId) as Row | undefined;
    return row ? fromRow(row) : null;
  }

  async list(filter: SessionFilter = {}): Promise<SessionRecord[]> {
    const where: string[] = [];
    const params: string[] = [];
    if (filter.user !== undefined) {
      where.push('user = ?');
      params.push(filter.user);
    }
    if (filter.phases !== undefined) {
      // `IN ()` is a syntax error; `IN (NULL)` matches nothing, as an empty phase list should.
      where.push(`phase IN (${filter.phases.map(() => '?').join(', ') || 'NULL'})`);
      params.push(...filter.phases);
    }
    const sql = 'SELECT * FROM sessions' + (where.length ? ` WHERE ${where.join(' AND ')}` : '') + ' ORDER BY created_at DESC, session_id';
    return (this.statement(sql).all(...params) as Row[]).map(fromRow);
  }

  async delete(sessionId: string): Promise<void> {
    this.statement('DELETE FROM sessions WHERE session_id = ?').run(sessionId);
  }

  async putVolume(record: VolumeRecord): Promise<boolean> {
    return this.versionedUpsert('volumes', 'volume', { ...toVolumeRow(record) });
  }

  /** Inserts `row`, or replaces the stored one if `row` is newer by (generation, seq); whether it wrote. */
  private versionedUpsert(table: string, key: string, row: Record<string, unknown>): boolean {
    const columns = Object.keys(row);
    const sql =
      `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map((c) => `@${c}`).join(', ')}) ` +
      `ON CONFLICT (${key}) DO UPDATE SET ${columns.map((c) => `${c} = excluded.${c}`).join(', ')} ` +
      `WHERE excluded.generation > ${table}.generation OR (excluded.generation = ${table}.generation AND excluded.seq > ${table}.seq)`;
    return this.statement(sql).run(row).changes > 0;
  }

  async getVolume(volume: string): Promise<VolumeRecord | null> {
    const row = this.statement('SELECT * FROM volumes WHERE volume = ?').get(volume) as VolumeRow | undefined;
    return row ? fromVolumeRow(row) : null;
  }

  async listVolumes(filter: { user?: string } = {}): Promise<VolumeRecord[]> {
    const where = filter.user === undefined ? '' : ' WHERE user = ?';
    const params = filter.user === undefined ? [] : [filter.user];
    return (this.statement(`SELECT * FROM volumes${where} ORDER BY last_used_at DESC, volume`).all(...params) as VolumeRow[]).map(fromVolumeRow);
  }

  async deleteRemovedVolume(volume: string): Promise<boolean> {
    return this.statement("DELETE FROM volumes WHERE volume = ? AND state = 'REMOVED'").run(volume).changes > 0;
  }

  async pinVolume(pin: VolumePin): Promise<void> {
    this.statement('INSERT OR REPLACE INTO volume_pins (volume, pinned_by, pinned_at) VALUES (?, ?, ?)').run(pin.volume, pin.pinnedBy, pin.pinnedAt.getTime());
  }

  async unpinVolume(volume: string): Promise<boolean> {
    return this.statement('DELETE FROM volume_pins WHERE volume = ?').run(volume).changes > 0;
  }

  async volumePin(volume: string): Promise<VolumePin | null> {
    const row = this.statement('SELECT pinned_by, pinned_at FROM volume_pins WHERE volume = ?').get(volume) as
      { pinned_by: string; pinned_at: number } | undefined;
    return row ? { volume, pinnedBy: row.pinned_by, pinnedAt: new Date(row.pinned_at) } : null;
  }

  async revoke(r: Revocation): Promise<void> {
    this.statement('INSERT OR REPLACE INTO revocations (user, revoked_by, revoked_at) VALUES (?, ?, ?)').run(r.user, r.revokedBy, r.revokedAt.getTime());
  }

  async unrevoke(user: string): Promise<boolean> {
    return this.statement('DELETE FROM revocations WHERE user = ?').run(user).changes > 0;
  }

  async revocation(user: string): Promise<Revocation | null> {
    const row = this.statement('SELECT revoked_by, revoked_at FROM revocations WHERE user = ?').get(user) as
      { revoked_by: string; revoked_at: number } | undefined;
    return row ? { user, revokedBy: row.revoked_by, revokedAt: new Date(row.revoked_at) } : null;
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
