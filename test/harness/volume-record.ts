/** A volume row as its owner would write it, for tests that set up what the store says. */
import type { VolumeRecord } from '../../lib/domain';
import { placementFor } from '../../lib/naming';

export function volumeRecord(user: string, workspace: string, overrides: Partial<VolumeRecord> = {}): VolumeRecord {
  const now = new Date();
  return {
    ...placementFor(user, workspace),
    user,
    workspace,
    state: 'PRESENT',
    pinned: false,
    lastUsedAt: now,
    removeAt: null,
    sizeBytes: null,
    generation: now.getTime(),
    seq: 1,
    updatedAt: now,
    ...overrides,
  };
}
