/**
 * How Google's errors reach the Kubernetes backend: with the call and resource, the canonical code
 * and whether a later try may succeed. Who retries: the client library retries UNAVAILABLE (503)
 * on list and get calls (250 ms, then x1.3, within 60 s per call), but not on creates, not on the
 * polls of a create's operation (they inherit the create's settings) and never on
 * RESOURCE_EXHAUSTED (429). Those reach the caller marked retryable; backupBeforeDelete is
 * idempotent, so the activity's own retry is safe.
 */
import { status } from '@grpc/grpc-js';
import { FilestoreApiError, VolumeNotFoundError } from '../../lib/filestore/errors';
import { createWorkspaceStorage, type WorkspaceStorage } from '../../lib/filestore/workspace-storage';
import { type FakeFilestoreRpc, useFakeFilestore } from '../fakes/filestore-fake';

const HANDLE = 'modeInstance/us-central1-a/pvc-1/vol1';

const fake = useFakeFilestore();
let storage: WorkspaceStorage;

beforeAll(() => {
  storage = createWorkspaceStorage(fake.client(), { project: fake.project, region: 'us-central1', tier: 'ZONAL', quotaGib: 10240 });
});

beforeEach(() => {
  fake.addInstance({ location: 'us-central1-a', instance: 'pvc-1', tier: 'ZONAL', capacityGib: 1024 });
});

const callsOf = (rpc: FakeFilestoreRpc) => fake.calls.filter((call) => call.rpc === rpc).map((call) => call.httpStatus);

describe('errors from Filestore', () => {
  it('403: surfaced at once with the call and resource, not retryable', async () => {
    fake.failNext('ListInstances', { httpStatus: 403, status: 'PERMISSION_DENIED', message: "Permission 'file.instances.list' denied" });

    const failure = storage.checkCapacity(100);
    await expect(failure).rejects.toThrow(FilestoreApiError);
    await expect(failure).rejects.toMatchObject({
      call: 'ListInstances',
      resource: `projects/${fake.project}/locations/-`,
      code: status.PERMISSION_DENIED,
      retryable: false,
      message: `Filestore ListInstances projects/${fake.project}/locations/- failed: PERMISSION_DENIED: Permission 'file.instances.list' denied`,
    });
    expect(callsOf('ListInstances')).toEqual([403]);
  });

  it('404: a missing volume is a VolumeNotFoundError whose cause is the API error', async () => {
    fake.failNext('GetInstance', { httpStatus: 404, status: 'NOT_FOUND', message: 'instance not found' });

    const failure = storage.backupBeforeDelete(HANDLE);
    await expect(failure).rejects.toThrow(VolumeNotFoundError);
    await expect(failure).rejects.toMatchObject({
      retryable: false,
      cause: expect.objectContaining({
        call: 'GetInstance',
        code: status.NOT_FOUND,
        resource: `projects/${fake.project}/locations/us-central1-a/instances/pvc-1`,
      }),
    });
  });

  it('503 on a read: retried by the client, the call succeeds', async () => {
    fake.failNext('ListInstances', { httpStatus: 503, status: 'UNAVAILABLE', message: 'backend unavailable' });

    await expect(storage.checkCapacity(100)).resolves.toMatchObject({ instances: 1 });
    expect(callsOf('ListInstances')).toEqual([503, 200]);
  });

  it('503 while polling the operation: not retried by the client, surfaced as retryable; a later try adopts the backup', async () => {
    fake.failNext('GetOperation', { httpStatus: 503, status: 'UNAVAILABLE' });

    await expect(storage.backupBeforeDelete(HANDLE)).rejects.toMatchObject({
      call: 'CreateBackup',
      code: status.UNAVAILABLE,
      retryable: true,
    });
    expect(callsOf('GetOperation')).toEqual([503]);

    // Google carries on with the backup meanwhile.
    fake.completeOperations();
    await expect(storage.backupBeforeDelete(HANDLE)).resolves.toMatchObject({ kind: 'backup', reused: true });
  });

  it.each([
    ['503 on a create', 'CreateBackup', { httpStatus: 503, status: 'UNAVAILABLE', message: 'try again later' }, status.UNAVAILABLE],
    ['429 on a read', 'GetInstance', { httpStatus: 429, status: 'RESOURCE_EXHAUSTED', message: 'Quota exceeded for reads' }, status.RESOURCE_EXHAUSTED],
  ] as const)('%s: not retried by the client, surfaced as retryable; the caller’s retry succeeds', async (_, rpc, error, code) => {
    fake.failNext(rpc, error);

    await expect(storage.backupBeforeDelete(HANDLE)).rejects.toMatchObject({
      call: rpc,
      code,
      retryable: true,
      message: expect.stringContaining(`${error.status}: ${error.message}`),
    });
    expect(callsOf(rpc)).toEqual([error.httpStatus]);

    await expect(storage.backupBeforeDelete(HANDLE)).resolves.toMatchObject({ kind: 'backup', reused: false });
  });
});
