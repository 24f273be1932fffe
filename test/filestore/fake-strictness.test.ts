/**
 * The Filestore fake refuses what the real API refuses, so a wrong call from lib/filestore fails
 * in tests rather than in production. Calls go through the real client, or raw HTTP for what the
 * client would never send.
 */
import { status } from '@grpc/grpc-js';
import type { v1 } from '@google-cloud/filestore';
import { useFakeFilestore } from '../fakes/filestore-fake';

const fake = useFakeFilestore();
let client: v1.CloudFilestoreManagerClient;
let source: string;

beforeAll(() => {
  client = fake.client();
});

beforeEach(() => {
  source = fake.addInstance({ location: 'us-central1-a', instance: 'pvc-1', tier: 'ZONAL', capacityGib: 1024 });
});

const backupIn = (location: string) => `projects/${fake.project}/locations/${location}`;

describe('the Filestore fake', () => {
  it('refuses requests without a token signed by its service account', async () => {
    const response = await fetch(`http://127.0.0.1:${fake.port}/v1/${backupIn('-')}/instances`, {
      headers: { authorization: 'Bearer not-a-jwt' },
    });
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ error: { status: 'UNAUTHENTICATED' } });
  });

  it('refuses output-only and unknown fields', async () => {
    const create = (backup: object) => client.createBackup({ parent: backupIn('us-central1'), backupId: 'b-1', backup });
    await expect(create({ sourceInstance: source, sourceFileShare: 'vol1', state: 'READY' })).rejects.toMatchObject({
      code: status.INVALID_ARGUMENT,
      message: expect.stringContaining('"state"'),
    });
    await expect(create({ sourceInstance: source, sourceFileShare: 'vol1', capacityGb: 10 })).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
  });

  it('refuses backups in a zone, bad ids, bad labels and the wrong share', async () => {
    const backup = { sourceInstance: source, sourceFileShare: 'vol1' };
    const refusals = [
      client.createBackup({ parent: backupIn('us-central1-a'), backupId: 'b-1', backup }),
      client.createBackup({ parent: backupIn('us-central1'), backupId: 'B_1', backup }),
      client.createBackup({ parent: backupIn('us-central1'), backupId: 'b-1', backup: { ...backup, labels: { Owner: 'x' } } }),
      client.createBackup({ parent: backupIn('us-central1'), backupId: 'b-1', backup: { ...backup, sourceFileShare: 'vol2' } }),
    ];
    for (const refusal of refusals) await expect(refusal).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
  });

  it('refuses snapshots on basic tiers, and calls for another project', async () => {
    const basic = fake.addInstance({ location: 'us-central1-b', instance: 'basic', tier: 'BASIC_HDD', capacityGib: 1024 });
    await expect(client.createSnapshot({ parent: basic, snapshotId: 's-1', snapshot: {} })).rejects.toMatchObject({
      code: status.FAILED_PRECONDITION,
    });
    await expect(client.getInstance({ name: 'projects/other-project/locations/us-central1-a/instances/pvc-1' })).rejects.toMatchObject({
      code: status.PERMISSION_DENIED,
    });
  });
});
