import type { SessionPhase, SessionRecord } from '../domain';

export interface SessionFilter {
  /** Only this user's sessions. */
  user?: string;
  /** Only sessions in one of these phases. */
  phases?: readonly SessionPhase[];
}

/**
 * Where session state lives: Cloud Spanner in production, SQLite on the embedded default.
 * Every implementation passes test/store/conformance.ts.
 */
export interface SessionStore {
  /** Creates the schema if it is missing. Idempotent. */
  init(): Promise<void>;
  /** Inserts or replaces the row for `record.sessionId`. Idempotent. */
  put(record: SessionRecord): Promise<void>;
  get(sessionId: string): Promise<SessionRecord | null>;
  /** Newest first (by createdAt). */
  list(filter?: SessionFilter): Promise<SessionRecord[]>;
  /** Moves lastActivityAt forward (never backward). No-op for an unknown session. */
  touch(sessionId: string, at: Date): Promise<void>;
  /** Removes the row. No-op for an unknown session. */
  delete(sessionId: string): Promise<void>;
  close(): Promise<void>;
}
