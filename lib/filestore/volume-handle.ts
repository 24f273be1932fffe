/**
 * The `spec.csi.volumeHandle` of PersistentVolumes provisioned by the Filestore CSI driver
 * (filestore.csi.storage.gke.io), in the two forms its pkg/csi_driver/volume_id.go writes:
 *
 *   modeInstance/<location>/<instance>/<share>
 *     one Filestore instance per volume, its single file share (StorageClasses standard-rwx,
 *     premium-rwx, zonal-rwx, regional-rwx, enterprise-rwx); location is a zone or a region;
 *   modeMultishare/<instance-prefix>/<project>/<location>/<instance>/<share>
 *     one share of a multishare instance (enterprise-multishare-rwx); the prefix is the
 *     StorageClass's `instance-storageclass-label` parameter.
 */
import { InvalidInputError } from '../validate';
import { LOCATION, PROJECT, RESOURCE_ID, SHARE } from './names';

export interface InstanceVolumeHandle {
  mode: 'instance';
  location: string;
  instance: string;
  share: string;
}

export interface MultishareVolumeHandle {
  mode: 'multishare';
  instancePrefix: string;
  project: string;
  location: string;
  instance: string;
  share: string;
}

export type FilestoreVolumeHandle = InstanceVolumeHandle | MultishareVolumeHandle;

/** The driver puts the prefix into a GCP label value. */
const LABEL_VALUE = /^[a-z0-9_-]{1,63}$/;

const PART_FORMATS: Record<string, RegExp> = {
  location: LOCATION,
  instance: RESOURCE_ID,
  share: SHARE,
  project: PROJECT,
  instancePrefix: LABEL_VALUE,
};

export function parseVolumeHandle(handle: string): FilestoreVolumeHandle {
  const [tag, ...rest] = handle.split('/');
  if (tag === 'modeInstance') {
    const [location, instance, share] = checkParts(handle, rest, ['location', 'instance', 'share']);
    return { mode: 'instance', location, instance, share };
  }
  if (tag === 'modeMultishare') {
    const names = ['instancePrefix', 'project', 'location', 'instance', 'share'];
    const [instancePrefix, project, location, instance, share] = checkParts(handle, rest, names);
    return { mode: 'multishare', instancePrefix, project, location, instance, share };
  }
  throw invalidHandle(handle, `must start with 'modeInstance/' or 'modeMultishare/'`);
}

export function formatVolumeHandle(handle: FilestoreVolumeHandle): string {
  const parts =
    handle.mode === 'instance'
      ? ['modeInstance', handle.location, handle.instance, handle.share]
      : ['modeMultishare', handle.instancePrefix, handle.project, handle.location, handle.instance, handle.share];
  const text = parts.join('/');
  // A handle we write must be one we, and the driver, can read back.
  parseVolumeHandle(text);
  return text;
}

function checkParts(handle: string, parts: string[], names: string[]): string[] {
  if (parts.length !== names.length) {
    throw invalidHandle(handle, `must have ${names.length} parts after the mode (${names.join('/')}), got ${parts.length}`);
  }
  names.forEach((name, i) => {
    if (!PART_FORMATS[name].test(parts[i])) throw invalidHandle(handle, `has an invalid ${name} ${JSON.stringify(parts[i])}`);
  });
  return parts;
}

function invalidHandle(handle: string, why: string): InvalidInputError {
  return new InvalidInputError('volumeHandle', `Filestore volume handle ${JSON.stringify(handle)} ${why}`);
}
