/**
 * Keeps a workspace volume's data before the volume is finally deleted: a regional Filestore backup
 * of its share, which outlives the instance. A volume on a tier without backups is refused. The id
 * is derived from the volume handle, so a retry after a crash or a time-out adopts what the earlier
 * attempt started.
 */
import { status } from '@grpc/grpc-js';
import { protos, type v1 } from '@google-cloud/filestore';
import { BackupInProgressError, filestoreCall, hasCode, UnsupportedVolumeError, VolumeNotFoundError, WorkspaceStorageError } from './errors';
import { enumName, summarize } from './inventory';
import { rbsLabels } from './labels';
import { instanceName, protectionId, regionOf } from './names';
import { type FilestoreTier, TIERS } from './tiers';
import { type InstanceVolumeHandle, parseVolumeHandle } from './volume-handle';
import type { WorkspaceStorageConfig } from './config';

export interface WorkspaceBackup {
  kind: 'backup';
  /** The backup's resource name. */
  name: string;
  /** Whether an earlier attempt had already taken it. */
  reused: boolean;
}

/** How the data is kept: what to create, and how to read back what may already exist. */
interface Keeper {
  kind: 'backup';
  calls: { create: 'CreateBackup'; get: 'GetBackup' };
  /** The resource to create. */
  name: string;
  /** Starts the creation and waits for its long-running operation. */
  create(): Promise<void>;
  /** The existing resource's state, and whether it is of this volume. */
  existing(): Promise<{ state: string; ofThisVolume: boolean }>;
}

const IN_PROGRESS = ['CREATING', 'FINALIZING'];

export async function backupBeforeDelete(
  client: v1.CloudFilestoreManagerClient,
  config: WorkspaceStorageConfig,
  volumeHandle: string,
  callerLabels: Readonly<Record<string, string>>,
): Promise<WorkspaceBackup> {
  const volume = parseVolumeHandle(volumeHandle);
  if (volume.mode === 'multishare') {
    throw new UnsupportedVolumeError(
      `cannot back up ${volumeHandle}: shares of multishare instances exist only in the v1beta1 API, ` +
        'and Filestore backups and snapshots do not support multishare instances',
    );
  }
  const labels = rbsLabels(callerLabels);
  const source = instanceName(config.project, volume.location, volume.instance);
  const tier = await volumeTier(client, source, volume, volumeHandle);
  const id = protectionId(volumeHandle, volume.instance);
  const description = `RBS workspace volume ${volumeHandle}, kept at its final deletion`;
  if (TIERS[tier].protection !== 'backup') {
    throw new UnsupportedVolumeError(
      `cannot back up ${volumeHandle}: instance ${source} is ${tier}, which has no backups (its snapshots are deleted with it); ` +
        'copy its data elsewhere before an operator deletes it',
    );
  }
  return keep(backupKeeper(client, config.project, volume, source, { backupId: id, description, labels }), volumeHandle);
}

/** The tier of the volume's instance, once it is clear the volume's share is there. */
async function volumeTier(client: v1.CloudFilestoreManagerClient, source: string, volume: InstanceVolumeHandle, volumeHandle: string): Promise<FilestoreTier> {
  let found: protos.google.cloud.filestore.v1.IInstance;
  try {
    [found] = await filestoreCall('GetInstance', source, () => client.getInstance({ name: source }));
  } catch (err) {
    if (hasCode(err, status.NOT_FOUND)) throw new VolumeNotFoundError(`volume ${volumeHandle}: instance ${source} does not exist`, err);
    throw err;
  }
  const { tier, shares } = summarize(found);
  if (!shares.some((share) => share.name === volume.share)) {
    throw new VolumeNotFoundError(`volume ${volumeHandle}: instance ${source} has no file share ${volume.share}`);
  }
  if (!tier) throw new UnsupportedVolumeError(`volume ${volumeHandle}: instance ${source} has a tier this module does not know`);
  return tier;
}

async function keep(keeper: Keeper, volumeHandle: string): Promise<WorkspaceBackup> {
  const { kind, name, calls } = keeper;
  try {
    await filestoreCall(calls.create, name, keeper.create);
    return { kind, name, reused: false };
  } catch (err) {
    if (!hasCode(err, status.ALREADY_EXISTS)) throw err;
  }
  const { state, ofThisVolume } = await filestoreCall(calls.get, name, keeper.existing);
  if (!ofThisVolume) throw new WorkspaceStorageError(`${kind} ${name} exists but is not of volume ${volumeHandle}`, false);
  if (state === 'READY') return { kind, name, reused: true };
  if (IN_PROGRESS.includes(state)) {
    throw new BackupInProgressError(`${kind} ${name} of volume ${volumeHandle}, started by an earlier attempt, is still ${state}`);
  }
  throw new WorkspaceStorageError(`${kind} ${name} of volume ${volumeHandle} is ${state}`, false);
}

/** A regional backup: it outlives the instance. Backups live in regions, not zones. */
function backupKeeper(
  client: v1.CloudFilestoreManagerClient,
  project: string,
  volume: InstanceVolumeHandle,
  sourceInstance: string,
  spec: { backupId: string; description: string; labels: Record<string, string> },
): Keeper {
  const parent = `projects/${project}/locations/${regionOf(volume.location)}`;
  const name = `${parent}/backups/${spec.backupId}`;
  const { backupId, description, labels } = spec;
  return {
    kind: 'backup',
    calls: { create: 'CreateBackup', get: 'GetBackup' },
    name,
    async create() {
      const backup = { description, labels, sourceInstance, sourceFileShare: volume.share };
      const [operation] = await client.createBackup({ parent, backupId, backup });
      await operation.promise();
    },
    async existing() {
      const [backup] = await client.getBackup({ name });
      // The API may name the source's project by number where we used its id: compare the rest.
      const sameInstance = (backup.sourceInstance ?? '').endsWith(`/locations/${volume.location}/instances/${volume.instance}`);
      return {
        state: enumName(protos.google.cloud.filestore.v1.Backup.State, backup.state),
        ofThisVolume: sameInstance && backup.sourceFileShare === volume.share,
      };
    },
  };
}
