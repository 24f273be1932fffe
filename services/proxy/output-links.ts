/**
 * The laptop's convenience links (`bazel-bin`, `bazel-out`, `bazel-testlogs`,
 * `bazel-<workspace directory>`), mirroring those the agent's Bazel made in its copy, with the
 * laptop's output base in their targets. Only links are ever replaced or removed, and only ours
 * (pointing into the output base): a file or a developer's own link of that name is left alone,
 * with a word saying so.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { LINK_ROLES, type LinkRole, linkName, symlinkPrefixOf } from '../../lib/bazel/convenience-links';

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
  const notes: string[] = [];
  for (const role of LINK_ROLES) {
    const link = path.join(workspace, linkName(prefix.prefix, role as LinkRole, path.basename(workspace)));
    const wanted = links.find((l) => l.role === role);
    const target = wanted && path.join(base, wanted.target);
    const existing = await fs.lstat(link).catch(() => undefined);
    if (existing && !existing.isSymbolicLink()) {
      if (target) notes.push(`${link} is not a link: left alone, so it does not lead to ${target}`);
      continue;
    }
    const current = existing && (await fs.readlink(link));
    if (current === target) continue;
    if (current !== undefined) {
      const ours = current === base || current.startsWith(`${base}/`);
      if (!ours) {
        notes.push(`${link} links to ${current}, not into ${base}: left alone`);
        continue;
      }
      await fs.unlink(link);
    }
    if (target) await fs.symlink(target, link);
  }
  return notes;
}
