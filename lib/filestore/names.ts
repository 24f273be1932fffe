/**
 * Filestore resource names and the ids RBS gives the resources it creates, checked against the
 * formats the v1 API documents so that a bad name fails here, with context, not at Google.
 */
import { createHash } from 'node:crypto';

/** A region (us-central1) or a zone (us-central1-c). */
export const LOCATION = /^[a-z]+-[a-z]+[0-9]+(-[a-z])?$/;
const REGION = /^[a-z]+-[a-z]+[0-9]+$/;
/** A project id, or a project number. */
export const PROJECT = /^([a-z][-a-z0-9]{4,28}[a-z0-9]|[0-9]{1,20})$/;
/** Instance, backup and snapshot ids: a letter, then up to 62 of [a-z0-9-], not ending in '-'. */
export const RESOURCE_ID = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** FileShareConfig.name: a letter, then [a-z0-9_]; 63 at most (16 on basic tiers, which the API enforces). */
export const SHARE = /^[a-z][a-z0-9_]{0,62}$/;

const INSTANCE_NAME = /^projects\/([^/]+)\/locations\/([^/]+)\/instances\/([^/]+)$/;

export function isRegion(location: string): boolean {
  return REGION.test(location);
}

/** The region of a zone or region: quotas and backups are regional, zonal instances are not. */
export function regionOf(location: string): string {
  if (!LOCATION.test(location)) throw new Error(`not a Filestore location: ${JSON.stringify(location)}`);
  return location.replace(/-[a-z]$/, '');
}

export function instanceName(project: string, location: string, instance: string): string {
  return `projects/${project}/locations/${location}/instances/${instance}`;
}

export function parseInstanceName(name: string): { project: string; location: string; instance: string } {
  const match = INSTANCE_NAME.exec(name);
  if (!match || !LOCATION.test(match[2]) || !RESOURCE_ID.test(match[3])) {
    throw new Error(`not a Filestore instance name: ${JSON.stringify(name)}`);
  }
  return { project: match[1], location: match[2], instance: match[3] };
}

const PREFIX = 'rbs-';
const HASH_LENGTH = 10;

/**
 * The backup or snapshot id for a volume: one per volume handle, so that a retried
 * backupBeforeDelete finds the backup an earlier attempt started instead of taking a second.
 * Readable (the instance id) and unique (a hash of the whole handle, since instance ids repeat
 * across zones); at most 63 characters.
 */
export function protectionId(volumeHandle: string, instance: string): string {
  const hash = createHash('sha256').update(volumeHandle).digest('hex').slice(0, HASH_LENGTH);
  const room = 63 - PREFIX.length - 1 - HASH_LENGTH;
  const readable = instance.slice(0, room).replace(/-+$/, '');
  return `${PREFIX}${readable}-${hash}`;
}
