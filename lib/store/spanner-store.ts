/**
 * The production session store: Cloud Spanner. init() creates what is missing (the instance only
 * on the emulator; the database; the schema) and tolerates a concurrent init doing the same.
 */
import { Spanner, type Database, type Instance } from '@google-cloud/spanner';
import { status } from '@grpc/grpc-js';
import { isVolumeState, type SessionRecord, type VolumeRecord } from '../domain';
import { checkedSessionFields, type Revocation, type SessionFilter, type SessionStore, type VolumePin } from './session-store';

export interface SpannerStoreOptions {
  projectId: string;
  instanceId: string;
  databaseId: string;
}

const TABLE = 'Sessions';
const INDEX = 'SessionsByUserCreatedAt';
const REVOCATIONS = 'Revocations';
const VOLUMES = 'Volumes';
const VOLUME_PINS = 'VolumePins';
const VOLUMES_INDEX = 'VolumesByUserLastUsedAt';

/** Columns added to the sessions table since it was first created (NULL in older rows), with their types. */
const ADDED_SESSION_COLUMNS: ReadonlyArray<[name: string, type: string]> = [
  // NULL counts as the oldest version.
  ['Generation', 'INT64'],
  ['Seq', 'INT64'],
  // NULL: not over, or over before end reasons existed.
  ['EndReason', 'STRING(MAX)'],
];

// IF NOT EXISTS makes a DDL race with another init harmless.
const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS ${TABLE} (
    SessionId      STRING(MAX) NOT NULL,
    WorkflowId     STRING(MAX) NOT NULL,
    RunId          STRING(MAX) NOT NULL,
    User           STRING(MAX) NOT NULL,
    Workspace      STRING(MAX) NOT NULL,
    Namespace      STRING(MAX) NOT NULL,
    Volume         STRING(MAX) NOT NULL,
    Phase          STRING(MAX) NOT NULL,
    AgentAddress   STRING(MAX),
    FailureReason  STRING(MAX),
    CreatedAt      TIMESTAMP NOT NULL,
    UpdatedAt      TIMESTAMP NOT NULL,
    LastActivityAt TIMESTAMP NOT NULL,
  ) PRIMARY KEY (SessionId)`,
  `CREATE INDEX IF NOT EXISTS ${INDEX} ON ${TABLE} (User, CreatedAt DESC)`,
  ...ADDED_SESSION_COLUMNS.map(([column, type]) => `ALTER TABLE ${TABLE} ADD COLUMN IF NOT EXISTS ${column} ${type}`),
  `CREATE TABLE IF NOT EXISTS ${REVOCATIONS} (
    User      STRING(MAX) NOT NULL,
    RevokedBy STRING(MAX) NOT NULL,
    RevokedAt TIMESTAMP NOT NULL,
  ) PRIMARY KEY (User)`,
  `CREATE TABLE IF NOT EXISTS ${VOLUMES} (
    Volume     STRING(MAX) NOT NULL,
    User       STRING(MAX) NOT NULL,
    Workspace  STRING(MAX) NOT NULL,
    Namespace  STRING(MAX) NOT NULL,
    State      STRING(MAX) NOT NULL,
    Pinned     BOOL NOT NULL,
    LastUsedAt TIMESTAMP NOT NULL,
    RemoveAt   TIMESTAMP,
    SizeBytes  INT64,
    Generation INT64 NOT NULL,
    Seq        INT64 NOT NULL,
    UpdatedAt  TIMESTAMP NOT NULL,
  ) PRIMARY KEY (Volume)`,
  `CREATE INDEX IF NOT EXISTS ${VOLUMES_INDEX} ON ${VOLUMES} (User, LastUsedAt DESC)`,
  `CREATE TABLE IF NOT EXISTS ${VOLUME_PINS} (
    Volume   STRING(MAX) NOT NULL,
    PinnedBy STRING(MAX) NOT NULL,
    PinnedAt TIMESTAMP NOT NULL,
  ) PRIMARY KEY (Volume)`,
];

interface Row {
  SessionId: string;
  WorkflowId: string;
  RunId: string;
  User: string;
  Workspace: string;
  Namespace: string;
  Volume: string;
  Phase: string;
  AgentAddress: string | null;
  FailureReason: string | null;
  EndReason: string | null;
  CreatedAt: Date;
  UpdatedAt: Date;
  LastActivityAt: Date;
  Generation: number | string | null;
  Seq: number | string | null;
}

function toRow(r: SessionRecord): Row {
  return {
    SessionId: r.sessionId,
    WorkflowId: r.workflowId,
    RunId: r.runId,
    User: r.user,
    Workspace: r.workspace,
    Namespace: r.namespace,
    Volume: r.volume,
    Phase: r.phase,
    AgentAddress: r.agentAddress,
    FailureReason: r.failureReason,
    EndReason: r.endReason,
    CreatedAt: new Date(r.createdAtMs),
    UpdatedAt: new Date(r.updatedAtMs),
    LastActivityAt: new Date(r.lastActivityAtMs),
    Generation: r.generation,
    Seq: r.seq,
  };
}

function fromRow(row: Row): SessionRecord {
  const { phase, endReason } = checkedSessionFields(row.SessionId, row.Phase, row.EndReason ?? null);
  // The client returns PreciseDate (a Date subclass with nanoseconds); callers get plain Dates.
  return {
    sessionId: row.SessionId,
    workflowId: row.WorkflowId,
    runId: row.RunId,
    user: row.User,
    workspace: row.Workspace,
    namespace: row.Namespace,
    volume: row.Volume,
    phase,
    agentAddress: row.AgentAddress,
    failureReason: row.FailureReason,
    endReason,
    createdAtMs: row.CreatedAt.getTime(),
    updatedAtMs: row.UpdatedAt.getTime(),
    lastActivityAtMs: row.LastActivityAt.getTime(),
    // INT64 comes back as a string in JSON form; NULL in a row from before versions.
    generation: Number(row.Generation ?? 0),
    seq: Number(row.Seq ?? 0),
  };
}

interface VolumeRow {
  Volume: string;
  User: string;
  Workspace: string;
  Namespace: string;
  State: string;
  Pinned: boolean;
  LastUsedAt: Date;
  RemoveAt: Date | null;
  SizeBytes: number | string | null;
  Generation: number | string;
  Seq: number | string;
  UpdatedAt: Date;
}

function toVolumeRow(r: VolumeRecord): VolumeRow {
  return {
    Volume: r.volume,
    User: r.user,
    Workspace: r.workspace,
    Namespace: r.namespace,
    State: r.state,
    Pinned: r.pinned,
    LastUsedAt: new Date(r.lastUsedAtMs),
    RemoveAt: r.removeAtMs === null ? null : new Date(r.removeAtMs),
    SizeBytes: r.sizeBytes,
    Generation: r.generation,
    Seq: r.seq,
    UpdatedAt: new Date(r.updatedAtMs),
  };
}

function fromVolumeRow(row: VolumeRow): VolumeRecord {
  if (!isVolumeState(row.State)) throw new Error(`volume ${row.Volume} has unknown state ${JSON.stringify(row.State)}`);
  return {
    volume: row.Volume,
    user: row.User,
    workspace: row.Workspace,
    namespace: row.Namespace,
    state: row.State,
    pinned: row.Pinned,
    lastUsedAtMs: row.LastUsedAt.getTime(),
    removeAtMs: row.RemoveAt ? row.RemoveAt.getTime() : null,
    sizeBytes: row.SizeBytes === null ? null : Number(row.SizeBytes),
    // INT64 comes back as a string in JSON form.
    generation: Number(row.Generation),
    seq: Number(row.Seq),
    updatedAtMs: row.UpdatedAt.getTime(),
  };
}

function isAlreadyExists(err: unknown): boolean {
  return (err as { code?: unknown }).code === status.ALREADY_EXISTS;
}

export class SpannerSessionStore implements SessionStore {
  private readonly spanner: Spanner;
  private readonly instance: Instance;
  private readonly db: Database;
  private readonly databasePath: string;

  constructor(private readonly options: SpannerStoreOptions) {
    // With SPANNER_EMULATOR_HOST set, the client talks plaintext to the emulator instead. The
    // emulator answers a request for a multiplexed session with a regular one, which the client
    // then fails to release ("Unable to release unknown resource"): use the session pool there.
    // The client reads this variable when instance.database() builds its session factory.
    if (process.env.SPANNER_EMULATOR_HOST) process.env.GOOGLE_CLOUD_SPANNER_MULTIPLEXED_SESSIONS ??= 'false';
    this.spanner = new Spanner({ projectId: options.projectId });
    this.instance = this.spanner.instance(options.instanceId);
    this.db = this.instance.database(options.databaseId);
    this.databasePath = `projects/${options.projectId}/instances/${options.instanceId}/databases/${options.databaseId}`;
  }

  async init(): Promise<void> {
    await this.step('creating the instance', () => this.ensureInstance());
    await this.step('creating the database', () => this.ensureDatabase());
    await this.step('creating the schema', () => this.ensureSchema());
  }

  async put(record: SessionRecord): Promise<boolean> {
    return this.step(`writing session ${record.sessionId}`, () => this.versionedUpsert(TABLE, record.sessionId, record, { ...toRow(record) }));
  }

  async get(sessionId: string): Promise<SessionRecord | null> {
    const rows = await this.query(`reading session ${sessionId}`, `SELECT * FROM ${TABLE} WHERE SessionId = @id`, {
      id: sessionId,
    });
    return rows[0] ?? null;
  }

  async list(filter: SessionFilter = {}): Promise<SessionRecord[]> {
    const where: string[] = [];
    const params: Record<string, unknown> = {};
    if (filter.user !== undefined) {
      where.push('User = @user');
      params.user = filter.user;
    }
    const types: Record<string, unknown> = {};
    if (filter.phases !== undefined) {
      where.push('Phase IN UNNEST(@phases)');
      params.phases = [...filter.phases];
      // An empty array has no element type to infer.
      types.phases = { type: 'array', child: 'string' };
    }
    const sql = `SELECT * FROM ${TABLE}` + (where.length ? ` WHERE ${where.join(' AND ')}` : '') + ' ORDER BY CreatedAt DESC, SessionId';
    return this.query('listing sessions', sql, params, types);
  }

  async delete(sessionId: string): Promise<void> {
    await this.step(`deleting session ${sessionId}`, () => this.db.table(TABLE).deleteRows([sessionId]));
  }

  async putVolume(record: VolumeRecord): Promise<boolean> {
    return this.step(`writing volume ${record.volume}`, () => this.versionedUpsert(VOLUMES, record.volume, record, { ...toVolumeRow(record) }));
  }

  /** Writes `row` (all columns: it replaces the stored one) if `version` is newer than the stored row's; whether it wrote. */
  private versionedUpsert(table: string, key: string, version: { generation: number; seq: number }, row: Record<string, unknown>): Promise<boolean> {
    return this.db.runTransactionAsync(async (tx) => {
      const [rows] = await tx.read(table, { keys: [key], columns: ['Generation', 'Seq'], json: true });
      const stored = rows[0] as { Generation: number | string | null; Seq: number | string | null } | undefined;
      const [generation, seq] = [Number(stored?.Generation ?? 0), Number(stored?.Seq ?? 0)];
      const newer = !stored || version.generation > generation || (version.generation === generation && version.seq > seq);
      if (newer) tx.upsert(table, row);
      await tx.commit();
      return newer;
    });
  }

  async getVolume(volume: string): Promise<VolumeRecord | null> {
    const [rows] = await this.step(`reading volume ${volume}`, () =>
      this.db.run({ sql: `SELECT * FROM ${VOLUMES} WHERE Volume = @volume`, params: { volume }, json: true }),
    );
    return rows.length ? fromVolumeRow(rows[0] as unknown as VolumeRow) : null;
  }

  async listVolumes(filter: { user?: string } = {}): Promise<VolumeRecord[]> {
    const where = filter.user === undefined ? '' : ' WHERE User = @user';
    const params = filter.user === undefined ? {} : { user: filter.user };
    const [rows] = await this.step('listing volumes', () =>
      this.db.run({ sql: `SELECT * FROM ${VOLUMES}${where} ORDER BY LastUsedAt DESC, Volume`, params, json: true }),
    );
    return (rows as unknown as VolumeRow[]).map(fromVolumeRow);
  }

  async deleteRemovedVolume(volume: string): Promise<boolean> {
    return this.step(`deleting removed volume ${volume}`, () =>
      this.db.runTransactionAsync(async (tx) => {
        const [deleted] = await tx.runUpdate({ sql: `DELETE FROM ${VOLUMES} WHERE Volume = @volume AND State = 'REMOVED'`, params: { volume } });
        await tx.commit();
        return deleted > 0;
      }),
    );
  }

  async pinVolume(pin: VolumePin): Promise<void> {
    await this.step(`pinning volume ${pin.volume}`, () =>
      this.db.table(VOLUME_PINS).upsert({ Volume: pin.volume, PinnedBy: pin.pinnedBy, PinnedAt: pin.pinnedAt }),
    );
  }

  async unpinVolume(volume: string): Promise<boolean> {
    return this.step(`unpinning volume ${volume}`, () =>
      this.db.runTransactionAsync(async (tx) => {
        const [deleted] = await tx.runUpdate({ sql: `DELETE FROM ${VOLUME_PINS} WHERE Volume = @volume`, params: { volume } });
        await tx.commit();
        return deleted > 0;
      }),
    );
  }

  async volumePin(volume: string): Promise<VolumePin | null> {
    const [rows] = await this.step(`reading the pin of volume ${volume}`, () =>
      this.db.table(VOLUME_PINS).read({ keys: [volume], columns: ['PinnedBy', 'PinnedAt'], json: true }),
    );
    const row = rows[0] as { PinnedBy: string; PinnedAt: Date } | undefined;
    return row ? { volume, pinnedBy: row.PinnedBy, pinnedAt: new Date(row.PinnedAt.getTime()) } : null;
  }

  async revoke(r: Revocation): Promise<void> {
    await this.step(`revoking user ${r.user}`, () => this.db.table(REVOCATIONS).upsert({ User: r.user, RevokedBy: r.revokedBy, RevokedAt: r.revokedAt }));
  }

  async unrevoke(user: string): Promise<boolean> {
    return this.step(`lifting the revocation of user ${user}`, () =>
      this.db.runTransactionAsync(async (tx) => {
        const [deleted] = await tx.runUpdate({ sql: `DELETE FROM ${REVOCATIONS} WHERE User = @user`, params: { user } });
        await tx.commit();
        return deleted > 0;
      }),
    );
  }

  async revocation(user: string): Promise<Revocation | null> {
    // A read by primary key outside a transaction: a single-use strong read.
    const [rows] = await this.step(`reading the revocation of user ${user}`, () =>
      this.db.table(REVOCATIONS).read({ keys: [user], columns: ['RevokedBy', 'RevokedAt'], json: true }),
    );
    const row = rows[0] as { RevokedBy: string; RevokedAt: Date } | undefined;
    return row ? { user, revokedBy: row.RevokedBy, revokedAt: new Date(row.RevokedAt.getTime()) } : null;
  }

  async close(): Promise<void> {
    await this.db.close();
    await this.spanner.close();
  }

  private async ensureInstance(): Promise<void> {
    const [exists] = await this.instance.exists();
    if (exists) return;
    // Real instances are capacity someone pays for: provisioned by operators, never by RBS.
    if (!process.env.SPANNER_EMULATOR_HOST) {
      throw new Error(`instance ${this.options.instanceId} does not exist (RBS creates instances only on the emulator)`);
    }
    try {
      const [, operation] = await this.spanner.createInstance(this.options.instanceId, {
        config: 'emulator-config',
        nodes: 1,
      });
      await operation.promise();
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
  }

  private async ensureDatabase(): Promise<void> {
    const [exists] = await this.db.exists();
    if (exists) return;
    try {
      const [, operation] = await this.instance.createDatabase(this.options.databaseId);
      await operation.promise();
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
  }

  private async ensureSchema(): Promise<void> {
    // Checking first skips a schema change (slow on real Spanner) when nothing is missing: the
    // index, the revocations table, the volumes index, the volume pins and each added session column.
    const [rows] = await this.db.run({
      sql: `SELECT (SELECT COUNT(*) FROM INFORMATION_SCHEMA.INDEXES
                    WHERE TABLE_SCHEMA = '' AND TABLE_NAME = @table AND INDEX_NAME = @index)
                 + (SELECT COUNT(*) FROM INFORMATION_SCHEMA.TABLES
                    WHERE TABLE_SCHEMA = '' AND TABLE_NAME = @revocations)
                 + (SELECT COUNT(*) FROM INFORMATION_SCHEMA.INDEXES
                    WHERE TABLE_SCHEMA = '' AND TABLE_NAME = @volumes AND INDEX_NAME = @volumesIndex)
                 + (SELECT COUNT(*) FROM INFORMATION_SCHEMA.TABLES
                    WHERE TABLE_SCHEMA = '' AND TABLE_NAME = @pins)
                 + (SELECT COUNT(*) FROM INFORMATION_SCHEMA.COLUMNS
                    WHERE TABLE_SCHEMA = '' AND TABLE_NAME = @table AND COLUMN_NAME IN UNNEST(@addedColumns)) AS n`,
      params: {
        table: TABLE,
        index: INDEX,
        revocations: REVOCATIONS,
        volumes: VOLUMES,
        volumesIndex: VOLUMES_INDEX,
        pins: VOLUME_PINS,
        addedColumns: ADDED_SESSION_COLUMNS.map(([column]) => column),
      },
      json: true,
    });
    if (Number((rows[0] as { n: unknown }).n) === 4 + ADDED_SESSION_COLUMNS.length) return;
    const [operation] = await this.db.updateSchema(SCHEMA);
    await operation.promise();
  }

  private async query(what: string, sql: string, params: Record<string, unknown>, types: Record<string, unknown> = {}): Promise<SessionRecord[]> {
    const [rows] = await this.step(what, () => this.db.run({ sql, params, types, json: true }));
    return (rows as unknown as Row[]).map(fromRow);
  }

  /** Runs one Spanner call, naming the database and the step in any error. */
  private async step<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      throw new Error(`Spanner ${this.databasePath}: ${what} failed: ${(err as Error).message}`, { cause: err });
    }
  }
}
