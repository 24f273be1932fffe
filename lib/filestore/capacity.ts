/**
 * Whether a new workspace volume fits, checked before provisioning so that a session fails at
 * once with the numbers instead of leaving a PVC Pending while the CSI driver's CreateInstance is
 * refused. In instance mode a volume is a new instance, so "room" is the region's quota for the
 * tier, which every instance of that tier in the region uses (RBS's or not). The quota itself is
 * configured: the Filestore API does not expose it (Cloud Quotas does).
 */
import type { v1 } from '@google-cloud/filestore';
import { InvalidInputError } from '../validate';
import { InsufficientCapacityError } from './errors';
import { listRegionInstances } from './inventory';
import { chargedGib, TIERS } from './tiers';
import type { WorkspaceStorageConfig } from './config';

export interface CapacityReport {
  requestedGib: number;
  /** What the new volume is charged: the request, rounded up to the tier's minimum. */
  chargedGib: number;
  usedGib: number;
  quotaGib: number;
  /** How many instances of the tier the region has now. */
  instances: number;
}

export async function checkCapacity(client: v1.CloudFilestoreManagerClient, config: WorkspaceStorageConfig, requestedGib: number): Promise<CapacityReport> {
  const { tier, region, quotaGib } = config;
  const { maxGib } = TIERS[tier];
  if (!Number.isSafeInteger(requestedGib) || requestedGib < 1 || requestedGib > maxGib) {
    throw new InvalidInputError('capacityGib', `a ${tier} workspace volume must be 1 to ${maxGib} GiB, got ${requestedGib}`);
  }
  const instances = (await listRegionInstances(client, config.project, region)).filter((i) => i.tier === tier);
  // An instance v1 shows without shares (multishare) is counted at the tier's minimum: a lower bound.
  const usedGib = sum(instances.map((i) => chargedGib(tier, sum(i.shares.map((share) => share.capacityGib)))));
  const report = { requestedGib, chargedGib: chargedGib(tier, requestedGib), usedGib, quotaGib, instances: instances.length };
  const freeGib = quotaGib - usedGib;
  if (report.chargedGib > freeGib) {
    throw new InsufficientCapacityError(
      `no room for a ${requestedGib} GiB ${tier} workspace volume in ${region}: it is charged ${report.chargedGib} GiB ` +
        `of quota and ${Math.max(freeGib, 0)} of ${quotaGib} GiB are free (${instances.length} ${tier} instances use ${usedGib} GiB)`,
      requestedGib,
      freeGib,
    );
  }
  return report;
}

function sum(values: number[]): number {
  return values.reduce((total, value) => total + value, 0);
}
