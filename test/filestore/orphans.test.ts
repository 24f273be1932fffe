/** Orphan discovery for the cleanup, through the real Filestore client against the loopback fake. */
import { CSI_PVC_NAME_LABEL, RBS_MANAGED_LABEL } from '../../lib/filestore/labels';
import { createWorkspaceStorage, type WorkspaceStorage } from '../../lib/filestore/workspace-storage';
import { useFakeFilestore } from '../fakes/filestore-fake';

const MANAGED = { [RBS_MANAGED_LABEL.key]: RBS_MANAGED_LABEL.value };
const CREATED = new Date('2026-01-02T03:04:05Z');

const fake = useFakeFilestore();
let storage: WorkspaceStorage;

beforeAll(() => {
  storage = createWorkspaceStorage(fake.client(), { project: fake.project, region: 'us-central1', tier: 'ZONAL', quotaGib: 10240 });
});

// Several pages, so that orphans on later pages are found too.
beforeEach(() => fake.setMaxPageSize(3));

function addVolume(instance: string, labels: Record<string, string>, extra: { location?: string; state?: 'READY' | 'DELETING' } = {}): string {
  return fake.addInstance({
    location: extra.location ?? 'us-central1-a',
    instance,
    tier: 'ZONAL',
    capacityGib: 1024,
    labels,
    state: extra.state,
    createdAt: CREATED,
  });
}

describe('findOrphans', () => {
  it('reports RBS instances whose volume is unknown, and only those', async () => {
    addVolume('pvc-live', { ...MANAGED, [CSI_PVC_NAME_LABEL]: 'alice-vol-280f7012050c' });
    const orphan = addVolume('pvc-orphan', { ...MANAGED, [CSI_PVC_NAME_LABEL]: 'bob-vol-0123456789ab' });
    addVolume('pvc-not-ours', { [CSI_PVC_NAME_LABEL]: 'carol-vol-0123456789ab' });
    addVolume('pvc-deleting', { ...MANAGED, [CSI_PVC_NAME_LABEL]: 'dave-vol-0123456789ab' }, { state: 'DELETING' });
    addVolume('pvc-elsewhere', { ...MANAGED, [CSI_PVC_NAME_LABEL]: 'erin-vol-0123456789ab' }, { location: 'europe-west4-a' });
    addVolume('pvc-false', { [RBS_MANAGED_LABEL.key]: 'false', [CSI_PVC_NAME_LABEL]: 'frank-vol-0123456789ab' });

    const report = await storage.findOrphans(new Set(['alice-vol-280f7012050c']));

    expect(report).toEqual({
      orphans: [
        {
          instance: orphan,
          volumeHandle: 'modeInstance/us-central1-a/pvc-orphan/vol1',
          volume: 'bob-vol-0123456789ab',
          createdAt: CREATED,
        },
      ],
      unattributed: [],
    });
  });

  it('keeps RBS instances it cannot attribute apart from orphans', async () => {
    const unlabelled = addVolume('pvc-unlabelled', MANAGED);
    const multishare = fake.addInstance({
      location: 'us-central1',
      instance: 'fs-1',
      tier: 'ENTERPRISE',
      capacityGib: 1024,
      share: null,
      labels: MANAGED,
      createdAt: CREATED,
    });

    const report = await storage.findOrphans(new Set());

    expect(report.orphans).toEqual([]);
    expect(report.unattributed).toEqual([
      { instance: unlabelled, volumeHandle: 'modeInstance/us-central1-a/pvc-unlabelled/vol1', volume: null, createdAt: CREATED },
      { instance: multishare, volumeHandle: null, volume: null, createdAt: CREATED },
    ]);
  });

  it('finds nothing when every RBS volume is known', async () => {
    addVolume('pvc-1', { ...MANAGED, [CSI_PVC_NAME_LABEL]: 'a-vol-1' });
    addVolume('pvc-2', { ...MANAGED, [CSI_PVC_NAME_LABEL]: 'b-vol-2' }, { location: 'us-central1-f' });

    await expect(storage.findOrphans(new Set(['a-vol-1', 'b-vol-2']))).resolves.toEqual({ orphans: [], unattributed: [] });
  });
});
