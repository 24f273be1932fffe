/** Which workspace volumes still exist, as the session store tells it: the cleanup and the limits count them. */
import { EXPIRY_REASON, type SessionRecord } from './domain';

/**
 * The volumes that may still exist, by what the session store says. A volume is per (user,
 * workspace) and outlives sessions: suspension, `rbs end` and failures keep it. Only expiry deletes
 * it, and the expired session's row then stays ENDED with EXPIRY_REASON; a later session of the
 * same workspace makes the volume anew. So the newest row of a volume decides: the volume is known
 * unless that row records its expiry. A volume without rows is unknown.
 */
export function knownVolumes(rows: readonly SessionRecord[]): Set<string> {
  const newest = new Map<string, SessionRecord>();
  for (const row of rows) {
    const seen = newest.get(row.volume);
    if (!seen || row.createdAt > seen.createdAt) newest.set(row.volume, row);
  }
  const expired = (row: SessionRecord) => row.phase === 'ENDED' && row.failureReason === EXPIRY_REASON;
  return new Set([...newest.values()].filter((row) => !expired(row)).map((row) => row.volume));
}
