/**
 * The Filestore instances of one region, read through the v1 API. v1 has no Share resource (shares
 * of multishare instances exist only in v1beta1, and v1's Instance has no multishare fields): to
 * v1 an instance is one file share (`fileShares`, "only a single file share is supported"), and
 * so is a workspace volume in instance mode. A multishare instance shows here with no shares.
 */
import { protos, type v1 } from '@google-cloud/filestore';
import { WorkspaceStorageError, filestoreCall } from './errors';
import { LOCATION, parseInstanceName, regionOf } from './names';
import { type FilestoreTier, tierOf } from './tiers';

type ApiInstance = protos.google.cloud.filestore.v1.IInstance;
type Int64 = number | string | { toString(): string } | null | undefined;

export interface FileShare {
  name: string;
  capacityGib: number;
}

export interface FilestoreInstance {
  /** projects/<project>/locations/<location>/instances/<instance> */
  name: string;
  location: string;
  instance: string;
  /** null for tiers this module does not know. */
  tier: FilestoreTier | null;
  /** v1 Instance.State, e.g. READY, CREATING, DELETING. */
  state: string;
  shares: FileShare[];
  labels: Readonly<Record<string, string>>;
  createdAt: Date | null;
}

const PAGE_SIZE = 100;

/**
 * Every instance in `region`, in any of its zones: zonal instances count against the regional
 * quota too. Lists all locations ('-') and keeps the region's; fails (retryably) if Google reports
 * one of the region's locations unreachable, since a partial inventory would undercount.
 */
export async function listRegionInstances(client: v1.CloudFilestoreManagerClient, project: string, region: string): Promise<FilestoreInstance[]> {
  const parent = `projects/${project}/locations/-`;
  const found: FilestoreInstance[] = [];
  let pageToken = '';
  do {
    const [instances, , page] = await filestoreCall('ListInstances', parent, () =>
      client.listInstances({ parent, pageSize: PAGE_SIZE, pageToken }, { autoPaginate: false }),
    );
    const unreachable = (page.unreachable ?? []).filter((entry) => mayBeIn(region, entry));
    if (unreachable.length > 0) {
      throw new WorkspaceStorageError(
        `Filestore ListInstances ${parent} could not reach ${unreachable.join(', ')}: the inventory of ${region} is incomplete`,
        true,
      );
    }
    for (const instance of instances) {
      const summary = summarize(instance);
      if (regionOf(summary.location) === region) found.push(summary);
    }
    pageToken = page.nextPageToken ?? '';
  } while (pageToken);
  return found;
}

/** Whether an `unreachable` entry (a location, or a resource name ending in one) may be in `region`. */
function mayBeIn(region: string, entry: string): boolean {
  const location = entry.split('/').pop() ?? '';
  return !LOCATION.test(location) || regionOf(location) === region;
}

export function summarize(instance: ApiInstance): FilestoreInstance {
  const name = instance.name ?? '';
  const { location, instance: id } = parseInstanceName(name);
  return {
    name,
    location,
    instance: id,
    tier: tierOf(enumName(protos.google.cloud.filestore.v1.Instance.Tier, instance.tier)),
    state: enumName(protos.google.cloud.filestore.v1.Instance.State, instance.state),
    shares: (instance.fileShares ?? []).map((share) => ({ name: share.name ?? '', capacityGib: int64(share.capacityGb) })),
    labels: instance.labels ?? {},
    createdAt: instance.createTime ? new Date(int64(instance.createTime.seconds) * 1000) : null,
  };
}

/** The client decodes enums to names, but its types also allow the numbers. */
export function enumName(values: Record<string | number, string | number>, value: string | number | null | undefined): string {
  return typeof value === 'number' ? String(values[value]) : (value ?? 'UNSPECIFIED');
}

/** int64 fields arrive as decimal strings (or Longs). */
function int64(value: Int64): number {
  return Number(String(value ?? 0));
}
