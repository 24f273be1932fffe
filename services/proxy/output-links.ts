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
import { effectiveFlag, effectiveOption } from '../../lib/bazel/options';

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
 * --symlink_prefix and --experimental_convenience_symlinks; returns what the developer should be told
 * (an option this cannot follow, a name in the way).
 */
export async function mirrorLinks(workspace: string, outputBase: string, args: string[], links: AgentLink[]): Promise<string[]> {
  const prefix = symlinkPrefixOf(args);
  if ('none' in prefix) return [];
  if ('refused' in prefix) return [`convenience links not made: ${prefix.refused} is not supported`];
  // A clean removes every link (links is empty), whatever the build options say of making them.
  const clean = args[0] === 'clean';
  const mode = clean ? undefined : effectiveOption(args, 'experimental_convenience_symlinks');
  if (mode && 'unknown' in mode) return [`convenience links left as they were: ${mode.unknown} is not supported`];
  // ignore and log_only touch no link; clean removes every one.
  if (mode?.value === 'ignore' || mode?.value === 'log_only') return [];
  // Bazel makes links even when analysis fails: a command that left none ended before that (a bad option, say), and
  // local Bazel would have touched none of the laptop's.
  if (!clean && mode?.value !== 'clean' && links.length === 0) return [];
  const base = path.resolve(outputBase);
  const targetOf = (role: LinkRole) => {
    const wanted = mode?.value === 'clean' ? undefined : links.find((l) => l.role === role);
    return wanted && path.join(base, wanted.target);
  };
  const notes: string[] = [];
  const named = (linkPrefix: string, role: LinkRole | 'genfiles') => path.join(workspace, linkName(linkPrefix, role, path.basename(workspace)));
  for (const role of LINK_ROLES) await mirrorLink(named(prefix.prefix, role), targetOf(role), base, notes);
  const genfiles = genfilesTarget(args, targetOf('bin'));
  if ('unknown' in genfiles) notes.push(`${named(prefix.prefix, 'genfiles')} left as it was: ${genfiles.unknown} is not supported`);
  else await mirrorLink(named(prefix.prefix, 'genfiles'), genfiles.target, base, notes);
  // Whatever the prefix, Bazel also links bazel-out to its output path, unless told not to (bazelbuild/bazel#3796); a clean removes it.
  if (prefix.prefix !== DEFAULT_SYMLINK_PREFIX) {
    const notMade = clean ? undefined : effectiveFlag(args, 'experimental_no_product_name_out_symlink');
    if (notMade && 'unknown' in notMade) notes.push(`${named(DEFAULT_SYMLINK_PREFIX, 'out')} left as it was: ${notMade.unknown} is not supported`);
    else if (!notMade?.value) await mirrorLink(named(DEFAULT_SYMLINK_PREFIX, 'out'), targetOf('out'), base, notes);
  }
  return notes;
}

/**
 * `<prefix>genfiles`: Bazel removes it (--incompatible_skip_genfiles_symlink, on by default), or links it
 * beside bin: to bin itself while genfiles are merged into it (the default), else to its genfiles sibling.
 */
function genfilesTarget(args: string[], bin: string | undefined): { target: string | undefined } | { unknown: string } {
  const skip = effectiveFlag(args, 'incompatible_skip_genfiles_symlink');
  const merged = effectiveFlag(args, 'incompatible_merge_genfiles_directory');
  if (skip && 'unknown' in skip) return skip;
  if (skip?.value !== false || !bin) return { target: undefined };
  if (merged && 'unknown' in merged) return merged;
  return { target: merged?.value === false ? path.join(path.dirname(bin), 'genfiles') : bin };
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
