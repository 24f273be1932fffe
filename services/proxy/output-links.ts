/**
 * The laptop's convenience links (`bazel-bin`, `bazel-out`, `bazel-testlogs`,
 * `bazel-<workspace directory>`), mirroring those the agent's Bazel made in its copy, with the
 * laptop's output base in their targets. Only links are ever replaced or removed, and only ours
 * (pointing into the output base): a file or a developer's own link of that name is left alone,
 * with a word saying so.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { DEFAULT_SYMLINK_PREFIX, LINK_ROLES, type LinkRole, linkName, symlinkPrefixOf } from '../../lib/bazel/convenience-links';
import { effectiveFlag } from '../../lib/bazel/options';

export interface AgentLink {
  role: string;
  /** Relative to the output base. */
  target: string;
}

/** Plain relative paths under execroot/: the execroot itself or something in it. */
const LINK_TARGET = /^execroot\/[^/\0-\x1f]+(?:\/[^/\0-\x1f]+)*$/;

/** Throws naming the link if the agent's list is not what Bazel makes. */
export function checkAgentLinks(links: AgentLink[]): void {
  for (const { role, target } of links) {
    const plain = LINK_TARGET.test(target) && !target.split('/').includes('..') && !target.split('/').includes('.');
    if (!(LINK_ROLES as readonly string[]).includes(role) || !plain) {
      throw new Error(`refused the agent's convenience link ${JSON.stringify(role)} -> ${JSON.stringify(target)}: not a link Bazel makes into its output base`);
    }
  }
}

/**
 * Makes the laptop's links match `links` (checked with checkAgentLinks), for the request's
 * --symlink_prefix; returns what the developer should be told (a refused prefix, a name in the way).
 */
export async function mirrorLinks(workspace: string, outputBase: string, args: string[], links: AgentLink[]): Promise<string[]> {
  const prefix = symlinkPrefixOf(args);
  if ('none' in prefix) return [];
  if ('refused' in prefix) return [`convenience links not made: ${prefix.refused} is not supported`];
  const base = path.resolve(outputBase);
  const targetOf = (role: LinkRole) => {
    const wanted = links.find((l) => l.role === role);
    return wanted && path.join(base, wanted.target);
  };
  const notes: string[] = [];
  for (const role of LINK_ROLES) {
    await mirrorLink(path.join(workspace, linkName(prefix.prefix, role, path.basename(workspace))), targetOf(role), base, notes);
  }
  // Whatever the prefix, Bazel also links bazel-out to its output path, unless told not to (bazelbuild/bazel#3796); a clean removes it.
  if (prefix.prefix !== DEFAULT_SYMLINK_PREFIX) {
    const productOut = path.join(workspace, linkName(DEFAULT_SYMLINK_PREFIX, 'out', path.basename(workspace)));
    const notMade = effectiveFlag(args, 'experimental_no_product_name_out_symlink');
    if (notMade && 'unknown' in notMade) notes.push(`${productOut} left as it was: ${notMade.unknown} is not supported`);
    else if (!notMade?.value) await mirrorLink(productOut, targetOf('out'), base, notes);
  }
  return notes;
}

/** Makes `link` lead to `target` (or go, if undefined), if it is ours to change: a link into `base`, or none. */
async function mirrorLink(link: string, target: string | undefined, base: string, notes: string[]): Promise<void> {
  const existing = await fs.lstat(link).catch(() => undefined);
  if (existing && !existing.isSymbolicLink()) {
    if (target) notes.push(`${link} is not a link: left alone, so it does not lead to ${target}`);
    return;
  }
  const current = existing && (await fs.readlink(link));
  if (current === target) return;
  if (current !== undefined) {
    const ours = current === base || current.startsWith(`${base}/`);
    if (!ours) {
      notes.push(`${link} links to ${current}, not into ${base}: left alone`);
      return;
    }
    await fs.unlink(link);
  }
  if (target) await fs.symlink(target, link);
}
