/**
 * Labels on Filestore resources: the ones RBS relies on, and the check of those it writes.
 * Labels are visible to anyone who can list the project's resources, so they carry opaque ids
 * (session ids, hashes), never secrets, user names or e-mail addresses.
 */
import { InvalidInputError } from '../validate';

/**
 * Marks RBS's instances (the Kubernetes backend's StorageClass passes it in its `labels`
 * parameter: `labels: rbs-managed=true`) and the backups and snapshots RBS takes.
 */
export const RBS_MANAGED_LABEL = { key: 'rbs-managed', value: 'true' } as const;

/**
 * Set by the CSI driver (with the provisioner's --extra-create-metadata, as on GKE) to the PVC
 * the instance was created for; RBS names a workspace volume's PVC after the volume.
 */
export const CSI_PVC_NAME_LABEL = 'kubernetes_io_created-for_pvc_name';

/** The API's rules, without the international characters it also allows. */
const KEY = /^[a-z][a-z0-9_-]{0,62}$/;
const VALUE = /^[a-z0-9_-]{0,63}$/;
const MAX_LABELS = 64;

/** Caller labels plus RBS's mark, checked against the API's rules; throws InvalidInputError. */
export function rbsLabels(callerLabels: Readonly<Record<string, string>>): Record<string, string> {
  const fail = (message: string): never => {
    throw new InvalidInputError('labels', message);
  };
  for (const [key, value] of Object.entries(callerLabels)) {
    if (!KEY.test(key)) fail(`label key ${JSON.stringify(key)} must be a lowercase letter then up to 62 of [a-z0-9_-]`);
    if (!VALUE.test(value)) fail(`label ${key}'s value must be at most 63 of [a-z0-9_-]`);
    if (key === RBS_MANAGED_LABEL.key) fail(`label key ${key} is reserved for RBS`);
  }
  const labels = { ...callerLabels, [RBS_MANAGED_LABEL.key]: RBS_MANAGED_LABEL.value };
  if (Object.keys(labels).length > MAX_LABELS) fail(`at most ${MAX_LABELS - 1} labels, got ${Object.keys(callerLabels).length}`);
  return labels;
}

export function isRbsManaged(labels: Readonly<Record<string, string>>): boolean {
  return labels[RBS_MANAGED_LABEL.key] === RBS_MANAGED_LABEL.value;
}
