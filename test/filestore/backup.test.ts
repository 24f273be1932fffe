/** Backups before the final deletion, through the real Filestore client against the loopback fake. */
import { status } from '@grpc/grpc-js';
import { BackupInProgressError, FilestoreApiError, UnsupportedVolumeError, VolumeNotFoundError } from '../../lib/filestore/errors';
import { createWorkspaceStorage, type WorkspaceStorage } from '../../lib/filestore/workspace-storage';
import { InvalidInputError } from '../../lib/validate';
import { useFakeFilestore } from '../fakes/filestore-fake';

const SESSION = '1b4e28ba-2fa1-41d2-883f-0016d3cca427';
const HANDLE = 'modeInstance/us-central1-a/pvc-5e1b8c7e-2f43-4f0c-9d2e-7a0d4c1e9b11/vol1';

const fake = useFakeFilestore();
let storage: WorkspaceStorage;
let instance: string;

beforeAll(() => {
  storage = createWorkspaceStorage(fake.client(), { project: fake.project, region: 'us-central1', tier: 'ZONAL', quotaGib: 10240 });
});

beforeEach(() => {
  instance = fake.addInstance({ location: 'us-central1-a', instance: 'pvc-5e1b8c7e-2f43-4f0c-9d2e-7a0d4c1e9b11', tier: 'ZONAL', capacityGib: 1024 });
});

const rpcs = () => fake.calls.map((call) => `${call.rpc} ${call.httpStatus}`);

describe('backupBeforeDelete', () => {
  it('backs the share up in the region, polling the operation until it is done', async () => {
    const backup = await storage.backupBeforeDelete(HANDLE, { 'rbs-session': SESSION });

    expect(backup).toEqual({
      kind: 'backup',
      name: expect.stringMatching(
        new RegExp(`^projects/${fake.project}/locations/us-central1/backups/rbs-pvc-5e1b8c7e-2f43-4f0c-9d2e-7a0d4c1e9b11-[0-9a-f]{10}$`),
      ),
      reused: false,
    });
    expect(fake.backup(backup.name)).toMatchObject({
      state: 'READY',
      sourceInstance: instance,
      sourceFileShare: 'vol1',
      labels: { 'rbs-session': SESSION, 'rbs-managed': 'true' },
      description: `RBS workspace volume ${HANDLE}, kept at its final deletion`,
    });
    expect(rpcs()).toEqual(['GetInstance 200', 'CreateBackup 200', 'GetOperation 200', 'GetOperation 200']);
  });

  it('adopts the backup of an earlier attempt instead of taking a second one', async () => {
    const first = await storage.backupBeforeDelete(HANDLE);
    fake.calls.length = 0;

    await expect(storage.backupBeforeDelete(HANDLE)).resolves.toEqual({ ...first, reused: true });
    expect(rpcs()).toEqual(['GetInstance 200', 'CreateBackup 409', 'GetBackup 200']);
  });

  it('reports an earlier attempt still running as retryable, and adopts it once done', async () => {
    // The first attempt loses its operation while polling (and the client does not retry a 403).
    fake.failNext('GetOperation', { httpStatus: 403, status: 'PERMISSION_DENIED', message: 'operations.get denied' });
    await expect(storage.backupBeforeDelete(HANDLE)).rejects.toMatchObject({ call: 'CreateBackup', code: status.PERMISSION_DENIED });

    const retry = storage.backupBeforeDelete(HANDLE);
    await expect(retry).rejects.toThrow(BackupInProgressError);
    await expect(retry).rejects.toMatchObject({ retryable: true, message: expect.stringMatching(/started by an earlier attempt, is still CREATING$/) });

    fake.completeOperations();
    await expect(storage.backupBeforeDelete(HANDLE)).resolves.toMatchObject({ kind: 'backup', reused: true });
  });

  it('refuses a volume on the legacy high scale tier, which has no backups and whose snapshots die with it', async () => {
    fake.addInstance({ location: 'us-central1-b', instance: 'pvc-hs', tier: 'HIGH_SCALE_SSD', capacityGib: 10240 });

    const refused = storage.backupBeforeDelete('modeInstance/us-central1-b/pvc-hs/vol1', { 'rbs-session': SESSION });

    await expect(refused).rejects.toThrow(UnsupportedVolumeError);
    await expect(refused).rejects.toMatchObject({ retryable: false, message: expect.stringMatching(/is HIGH_SCALE_SSD, which has no backups/) });
    // Nothing was taken that would vanish with the instance.
    expect(fake.calls.map((call) => call.rpc)).not.toContain('CreateSnapshot');
  });

  it('is refused for a high scale StorageClass at configuration', () => {
    expect(() => createWorkspaceStorage(fake.client(), { project: fake.project, region: 'us-central1', tier: 'HIGH_SCALE_SSD', quotaGib: 10240 })).toThrow(
      /tier HIGH_SCALE_SSD is refused: it has no backups, and its snapshots are deleted with their instance/,
    );
  });

  it('gives different volumes different backups, even with one instance id in two zones', async () => {
    fake.addInstance({ location: 'us-central1-b', instance: 'pvc-5e1b8c7e-2f43-4f0c-9d2e-7a0d4c1e9b11', tier: 'ZONAL', capacityGib: 1024 });
    const a = await storage.backupBeforeDelete(HANDLE);
    const b = await storage.backupBeforeDelete(HANDLE.replace('us-central1-a', 'us-central1-b'));
    expect(b.name).not.toBe(a.name);
    expect(b.reused).toBe(false);
  });

  it('surfaces a failed operation with the call, the backup and Google’s reason', async () => {
    fake.failNextOperation('CreateBackup', { code: status.FAILED_PRECONDITION, message: 'another operation is in progress on the instance' });

    const failure = storage.backupBeforeDelete(HANDLE);
    await expect(failure).rejects.toThrow(FilestoreApiError);
    await expect(failure).rejects.toMatchObject({
      call: 'CreateBackup',
      code: status.FAILED_PRECONDITION,
      retryable: false,
      message: expect.stringMatching(
        /^Filestore CreateBackup projects\/.*\/backups\/rbs-pvc-.* failed: FAILED_PRECONDITION: another operation is in progress on the instance$/,
      ),
    });
  });

  it('says the volume is gone when its instance or share does not exist', async () => {
    const gone = storage.backupBeforeDelete('modeInstance/us-central1-a/pvc-gone/vol1');
    await expect(gone).rejects.toThrow(VolumeNotFoundError);
    await expect(gone).rejects.toThrow(/instance projects\/.*\/instances\/pvc-gone does not exist/);
    await expect(gone).rejects.toMatchObject({ retryable: false, cause: expect.any(FilestoreApiError) });

    await expect(storage.backupBeforeDelete(HANDLE.replace(/vol1$/, 'vol2'))).rejects.toThrow(/has no file share vol2/);
  });

  it('refuses multishare volumes, which v1 cannot address, without calling Filestore', async () => {
    const multishare = 'modeMultishare/rbs/rbs-project/us-central1/fs-1234/pvc_5e1b8c7e';
    await expect(storage.backupBeforeDelete(multishare)).rejects.toThrow(UnsupportedVolumeError);
    await expect(storage.backupBeforeDelete(multishare)).rejects.toThrow(/only in the v1beta1 API/);
    expect(fake.calls).toEqual([]);
  });

  it.each([
    [{ User: 'x' }, /label key "User" must be a lowercase letter/],
    [{ owner: 'alice@example.com' }, /label owner's value must be at most 63 of \[a-z0-9_-\]/],
    [{ 'rbs-managed': 'false' }, /label key rbs-managed is reserved for RBS/],
    [{ note: 'x'.repeat(64) }, /label note's value must be at most 63/],
  ])('refuses the labels %j before calling Filestore', async (labels, message) => {
    await expect(storage.backupBeforeDelete(HANDLE, labels)).rejects.toThrow(InvalidInputError);
    await expect(storage.backupBeforeDelete(HANDLE, labels)).rejects.toThrow(message);
    expect(fake.calls).toEqual([]);
  });

  it('refuses a malformed handle', async () => {
    await expect(storage.backupBeforeDelete('pvc-5e1b8c7e')).rejects.toThrow(InvalidInputError);
    expect(fake.calls).toEqual([]);
  });
});
