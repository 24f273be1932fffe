/**
 * Names of a session's cloud resources, derived from (user, workspace). Escaping follows
 * JupyterHub kubespawner's slugs.py: a readable slug of the user for humans, plus a hash of the
 * raw inputs for uniqueness, so lossy escaping never makes two placements collide.
 */
import { createHash } from 'node:crypto';
import type { SessionPlacement } from './domain';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const MAX_LABEL_LENGTH = 63;
/** 20 hex digits: 80 bits, so no one can search for a second (user, workspace) with a given name. */
const HASH_LENGTH = 20;
/** Leaves room for '-rbs-' (or '-vol-') and the hash within one label. */
const MAX_SLUG_LENGTH = MAX_LABEL_LENGTH - '-rbs-'.length - HASH_LENGTH;

export function isDns1123Label(s: string): boolean {
  return s.length <= MAX_LABEL_LENGTH && DNS1123_LABEL.test(s);
}

/**
 * A readable DNS-1123 fragment of a user name: lowercase [a-z0-9-], starting with a letter, no
 * '--', no leading or trailing '-', at most 38 characters. Many names share a slug ('Alice' and
 * 'alice', all-CJK names → 'u'); placementFor's hash keeps them apart.
 */
export function userSlug(user: string): string {
  const escaped = user
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  // Labels may start with a digit, but a letter keeps the name readable as a name.
  const lettered = /^[a-z]/.test(escaped) ? escaped : `u${escaped}`;
  return lettered.slice(0, MAX_SLUG_LENGTH).replace(/-+$/, '');
}

/**
 * Where (user, workspace) runs. The hash covers the raw inputs, joined by a newline that a
 * validated user name cannot contain, so distinct pairs get distinct names.
 * Precondition: both passed lib/validate (which also excludes unpaired surrogates, which UTF-8
 * hashing would conflate).
 */
export function placementFor(user: string, workspace: string): SessionPlacement {
  const hash = createHash('sha256').update(`${user}\n${workspace}`).digest('hex').slice(0, HASH_LENGTH);
  const slug = userSlug(user);
  return { namespace: `${slug}-rbs-${hash}`, volume: `${slug}-vol-${hash}` };
}

const WORKFLOW_ID_PREFIX = 'rbs-session-';

export function workflowIdFor(namespace: string): string {
  return `${WORKFLOW_ID_PREFIX}${namespace}`;
}

const VOLUME_WORKFLOW_ID_PREFIX = 'rbs-volume-';

/** The id of the workflow that owns a volume: one at a time per volume, whatever runs it. */
export function volumeWorkflowIdFor(volume: string): string {
  return `${VOLUME_WORKFLOW_ID_PREFIX}${volume}`;
}
