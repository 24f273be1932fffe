import { type EndReason, isEndReason, isSessionPhase, type SessionPhase, type SessionRecord, type VolumeRecord } from '../domain';

export interface SessionFilter {
  /** Only this user's sessions. */
  user?: string;
  /** Only sessions in one of these phases. */
  phases?: readonly SessionPhase[];
}

/** An operator's decision that a user may no longer use RBS, until it is lifted. */
export interface Revocation {
  user: string;
  /** The operator who revoked. */
  revokedBy: string;
  revokedAt: Date;
}

/** An operator's decision to keep a volume whatever its last use, until it is lifted. */
export interface VolumePin {
  volume: string;
  /** The operator who pinned. */
  pinnedBy: string;
  pinnedAt: Date;
}

/** A stored row's phase and end reason, checked: a corrupt row is reported with its session id, never passed on. */
export function checkedSessionFields(sessionId: string, phase: string, endReason: string | null): { phase: SessionPhase; endReason: EndReason | null } {
  if (!isSessionPhase(phase)) throw new Error(`session ${sessionId} has unknown phase ${JSON.stringify(phase)}`);
  if (endReason !== null && !isEndReason(endReason)) throw new Error(`session ${sessionId} has unknown end reason ${JSON.stringify(endReason)}`);
  return { phase, endReason };
}

/**
 * Where session state (and the user revocations every call checks) lives: Cloud Spanner in production, SQLite on the embedded default.
 * Every implementation passes test/store/conformance.ts.
 */
export interface SessionStore {
  /** Creates the schema if it is missing. Idempotent. */
  init(): Promise<void>;
  /**
   * Writes the session's row unless the stored one is as new or newer by (generation, seq): false
   * then. Atomic: of two concurrent writes, the newer one stays. Only the session's workflow writes it.
   */
  put(record: SessionRecord): Promise<boolean>;
  get(sessionId: string): Promise<SessionRecord | null>;
  /** Newest first (by createdAtMs). */
  list(filter?: SessionFilter): Promise<SessionRecord[]>;
  /** Removes the row. No-op for an unknown session. */
  delete(sessionId: string): Promise<void>;
  /**
   * Writes the volume's row unless the stored one is as new or newer by (generation, seq): false
   * then. Atomic: of two concurrent writes, the newer one stays.
   */
  putVolume(record: VolumeRecord): Promise<boolean>;
  getVolume(volume: string): Promise<VolumeRecord | null>;
  /** Most recently used first. */
  listVolumes(filter?: { user?: string }): Promise<VolumeRecord[]>;
  /** Removes the volume's row if it says REMOVED (a new owner's row stays); false if it did not. */
  deleteRemovedVolume(volume: string): Promise<boolean>;
  /** Records a pin, replacing any earlier one of the same volume. Written only by the orchestrator. */
  pinVolume(pin: VolumePin): Promise<void>;
  /** Lifts the volume's pin; false if there was none. */
  unpinVolume(volume: string): Promise<boolean>;
  volumePin(volume: string): Promise<VolumePin | null>;
  /** Records a revocation, replacing any earlier one of the same user. */
  revoke(revocation: Revocation): Promise<void>;
  /** Lifts the user's revocation; false if there was none. */
  unrevoke(user: string): Promise<boolean>;
  /**
   * The user's revocation, or null: one strongly consistent point read by primary key, since every
   * call checks it and a revocation must hold at the very next call at any orchestrator replica.
   */
  revocation(user: string): Promise<Revocation | null>;
  close(): Promise<void>;
}
