/** A volume row as its owner would write it, for tests that set up what the store says. */
import type { VolumeRecord } from '../../lib/domain';
import { placementFor } from '../../lib/naming';

export function volumeRecord(user: string, workspace: string, overrides: Partial<VolumeRecord> = {}): VolumeRecord {
  const now = Date.now();
  return {
    ...placementFor(user, workspace),
    user,
    workspace,
    state: 'PRESENT',
    pinned: false,
    lastUsedAtMs: now,
    removeAtMs: null,
    sizeBytes: null,
    generation: now,
    seq: 1,
    updatedAtMs: now,
    ...overrides,
  };
}
