/**
 * What each Filestore service tier means for a workspace volume that is a whole instance
 * (instance mode): the capacity it is charged against the regional quota, the largest it can be,
 * and how to keep its data when it is deleted. Sources: the service tiers page of the Filestore
 * docs ("Basic HDD (on GKE) instances with capacity lower than 1 TiB consume 1 TiB of quota"),
 * the CSI driver's per-tier size ranges (pkg/csi_driver/controller.go), and the backup and
 * snapshot support tables. Re-check them when Google adds a tier.
 */

/** v1 Instance.Tier values; STANDARD and PREMIUM are the API's older names for the basic tiers. */
export type FilestoreTier = 'BASIC_HDD' | 'BASIC_SSD' | 'ZONAL' | 'REGIONAL' | 'ENTERPRISE' | 'HIGH_SCALE_SSD';

/**
 * How data outlives the volume's deletion. 'backup': a regional Backup, independent of the
 * instance. 'none': the legacy high scale SSD tier has snapshots but not backups, and a snapshot is
 * deleted with its instance, so nothing of a removed volume would be left: RBS refuses that tier.
 */
export type Protection = 'backup' | 'none';

export interface TierFacts {
  /** An instance smaller than this is charged this much quota (and the CSI driver rounds up to it). */
  minChargedGib: number;
  maxGib: number;
  protection: Protection;
}

const TIB = 1024;
/** 63.9 TiB, the basic tiers' ceiling. */
const BASIC_MAX_GIB = Math.floor(63.9 * TIB);

export const TIERS: Readonly<Record<FilestoreTier, TierFacts>> = {
  BASIC_HDD: { minChargedGib: 1 * TIB, maxGib: BASIC_MAX_GIB, protection: 'backup' },
  BASIC_SSD: { minChargedGib: 2.5 * TIB, maxGib: BASIC_MAX_GIB, protection: 'backup' },
  ZONAL: { minChargedGib: 1 * TIB, maxGib: 100 * TIB, protection: 'backup' },
  REGIONAL: { minChargedGib: 1 * TIB, maxGib: 100 * TIB, protection: 'backup' },
  ENTERPRISE: { minChargedGib: 1 * TIB, maxGib: 10 * TIB, protection: 'backup' },
  HIGH_SCALE_SSD: { minChargedGib: 10 * TIB, maxGib: 100 * TIB, protection: 'none' },
};

const ALIASES: Readonly<Record<string, FilestoreTier>> = { STANDARD: 'BASIC_HDD', PREMIUM: 'BASIC_SSD' };

/** The tier an API value names (aliases folded, since they share a quota), or null for others. */
export function tierOf(apiValue: string): FilestoreTier | null {
  const name = ALIASES[apiValue] ?? apiValue;
  return name in TIERS ? (name as FilestoreTier) : null;
}

/** Quota an instance of `gib` charges. */
export function chargedGib(tier: FilestoreTier, gib: number): number {
  return Math.max(gib, TIERS[tier].minChargedGib);
}
