/** Which workspace volumes still exist, as the store tells it: the cleanup and the limits count them. */
import { EXPIRY_REASON, type SessionRecord, type VolumeRecord } from './domain';

/**
 * The volumes that may still exist. A volume is per (user, workspace) and outlives sessions. Its
 * owner (workflows/volume.ts) records it from the moment a session claims it until it is REMOVED.
 * A volume without such a record is one from before volumes had owners: sessions then deleted
 * their volume as they expired, and the expired row stays ENDED with EXPIRY_REASON; a later session
 * of the same workspace made the volume anew. For those, the newest session row decides.
 */
export function knownVolumes(sessions: readonly SessionRecord[], volumes: readonly VolumeRecord[]): Set<string> {
  const owned = new Set(volumes.map((v) => v.volume));
  const known = new Set(volumes.filter((v) => v.state !== 'REMOVED').map((v) => v.volume));
  const newest = new Map<string, SessionRecord>();
  for (const row of sessions) {
    if (owned.has(row.volume)) continue;
    const seen = newest.get(row.volume);
    if (!seen || row.createdAtMs > seen.createdAtMs) newest.set(row.volume, row);
  }
  const expired = (row: SessionRecord) => row.phase === 'ENDED' && row.failureReason === EXPIRY_REASON;
  for (const row of newest.values()) if (!expired(row)) known.add(row.volume);
  return known;
}
