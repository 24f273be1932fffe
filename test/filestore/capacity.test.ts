/** Capacity checks through the real Filestore client against the loopback fake (no emulator exists). */
import { InsufficientCapacityError, WorkspaceStorageError } from '../../lib/filestore/errors';
import type { FilestoreTier } from '../../lib/filestore/tiers';
import { createWorkspaceStorage, type WorkspaceStorage } from '../../lib/filestore/workspace-storage';
import { InvalidInputError } from '../../lib/validate';
import { useFakeFilestore } from '../fakes/filestore-fake';

const fake = useFakeFilestore();
let storage: WorkspaceStorage;

const storageFor = (tier: FilestoreTier) => createWorkspaceStorage(fake.client(), { project: fake.project, region: 'us-central1', tier, quotaGib: 4096 });

beforeAll(() => {
  storage = storageFor('ZONAL');
});

describe('checkCapacity', () => {
  it.each([
    {
      what: 'counts every zone of the region and no other tier or region',
      tier: 'ZONAL',
      instances: [
        { location: 'us-central1-a', instance: 'pvc-a', tier: 'ZONAL', capacityGib: 1024 },
        { location: 'us-central1-b', instance: 'pvc-b', tier: 'ZONAL', capacityGib: 1536 },
        { location: 'us-central1', instance: 'ent', tier: 'ENTERPRISE', capacityGib: 2048 },
        { location: 'us-east1-b', instance: 'far', tier: 'ZONAL', capacityGib: 4096 },
      ],
      request: 1536,
      report: { requestedGib: 1536, chargedGib: 1536, usedGib: 2560, quotaGib: 4096, instances: 2 },
    },
    {
      what: 'counts the STANDARD alias as basic HDD and charges small instances 1 TiB',
      tier: 'BASIC_HDD',
      instances: [
        { location: 'us-central1-a', instance: 'old', tier: 'STANDARD', capacityGib: 100 },
        { location: 'us-central1-b', instance: 'new', tier: 'BASIC_HDD', capacityGib: 2048 },
        { location: 'us-central1-b', instance: 'ssd', tier: 'BASIC_SSD', capacityGib: 2560 },
      ],
      request: 200,
      report: { requestedGib: 200, chargedGib: 1024, usedGib: 3072, quotaGib: 4096, instances: 2 },
    },
  ] as const)('fits when the quota has room: $what', async ({ tier, instances, request, report }) => {
    instances.forEach((instance) => fake.addInstance(instance));

    await expect(storageFor(tier).checkCapacity(request)).resolves.toEqual(report);
  });
});

describe('checkCapacity on the ZONAL tier', () => {
  it('charges a small volume the tier minimum, which the CSI driver rounds it up to', async () => {
    await expect(storage.checkCapacity(100)).resolves.toMatchObject({ requestedGib: 100, chargedGib: 1024 });
  });

  it('refuses with the numbers when the quota has no room', async () => {
    fake.addInstance({ location: 'us-central1-a', instance: 'pvc-a', tier: 'ZONAL', capacityGib: 1024 });
    fake.addInstance({ location: 'us-central1-c', instance: 'pvc-c', tier: 'ZONAL', capacityGib: 2048 });

    // The boundary: exactly the free quota still fits, one GiB more does not.
    await expect(storage.checkCapacity(1024)).resolves.toMatchObject({ chargedGib: 1024, usedGib: 3072 });
    const refusal = storage.checkCapacity(1025);
    await expect(refusal).rejects.toThrow(InsufficientCapacityError);
    await expect(refusal).rejects.toMatchObject({
      requestedGib: 1025,
      freeGib: 1024,
      retryable: false,
      message:
        'no room for a 1025 GiB ZONAL workspace volume in us-central1: it is charged 1025 GiB of quota and 1024 of 4096 GiB are free ' +
        '(2 ZONAL instances use 3072 GiB)',
    });
  });

  it('fits with no instance of the tier yet, as long as the request is within the quota', async () => {
    await expect(storage.checkCapacity(4096)).resolves.toMatchObject({ usedGib: 0, instances: 0 });
    await expect(storage.checkCapacity(4097)).rejects.toThrow(/no room for a 4097 GiB ZONAL workspace volume in us-central1/);
  });

  it('rejects sizes no volume of the tier can have, before calling Filestore', async () => {
    for (const gib of [0, -1, 1.5, Number.NaN, 102401]) {
      await expect(storage.checkCapacity(gib)).rejects.toThrow(InvalidInputError);
    }
    await expect(storage.checkCapacity(102401)).rejects.toThrow('a ZONAL workspace volume must be 1 to 102400 GiB, got 102401');
    expect(fake.calls).toEqual([]);
  });

  it('fails retryably rather than undercount when a location of the region is unreachable', async () => {
    fake.setUnreachable(['us-east1-b']);
    await expect(storage.checkCapacity(100)).resolves.toMatchObject({ instances: 0 });

    fake.setUnreachable(['us-central1-f']);
    const failure = storage.checkCapacity(100);
    await expect(failure).rejects.toThrow(WorkspaceStorageError);
    await expect(failure).rejects.toMatchObject({ retryable: true, message: expect.stringContaining('could not reach us-central1-f') });
  });
});

describe('the inventory', () => {
  it('follows every page of ListInstances', async () => {
    fake.setMaxPageSize(2);
    (['ZONAL', 'ENTERPRISE', 'ZONAL', 'BASIC_SSD', 'ZONAL'] as const).forEach((tier, i) =>
      fake.addInstance({ location: `us-central1-${'abcfa'[i]}`, instance: `pvc-${i}`, tier, capacityGib: 100 }),
    );
    await expect(storage.checkCapacity(1)).resolves.toMatchObject({ instances: 3, usedGib: 3 * 1024 });
    expect(fake.calls.filter((call) => call.rpc === 'ListInstances')).toHaveLength(3);
  });
});

describe('createWorkspaceStorage', () => {
  it.each([
    [{ region: 'us-central1-a' }, /region "us-central1-a" is not a region/],
    [{ project: 'Bad Project' }, /project "Bad Project" is not a project id or number/],
    [{ tier: 'GOLD' }, /tier "GOLD" is not one of BASIC_HDD, BASIC_SSD, ZONAL/],
    [{ quotaGib: 0 }, /quotaGib must be a positive integer, got 0/],
  ])('refuses the config %j', (override, message) => {
    const config = { project: fake.project, region: 'us-central1', tier: 'ZONAL' as const, quotaGib: 1024, ...override };
    expect(() => createWorkspaceStorage(fake.client(), config as never)).toThrow(message);
  });
});
