/**
 * Symlinks that leave the workspace. Local Bazel follows them to whatever they reach on the
 * laptop; the agent's rsync (forced --safe-links) drops them, so they would be a silent difference.
 * The sync refuses instead, naming each one. A link is judged by rsync's own rule, so that exactly
 * the links the agent would drop are named.
 */
import * as fs from 'node:fs';
import { SETTINGS_FILE } from '../workspace-settings';

export class OutsideLinksError extends Error {
  override name = 'OutsideLinksError';
}

/** Throws OutsideLinksError naming every link among `links` (workspace-relative) that rsync deems unsafe. */
export function refuseOutsideLinks(workspace: string, links: Buffer[]): void {
  const outside: string[] = [];
  for (const key of new Set(links.map((link) => link.toString('latin1')))) {
    const link = Buffer.from(key, 'latin1');
    const full = Buffer.concat([Buffer.from(`${workspace}/`), link]);
    let target: Buffer;
    try {
      target = fs.readlinkSync(full, { encoding: 'buffer' });
    } catch {
      continue; // gone since it was listed: the sync will not send it either
    }
    if (!leavesTree(link.toString('latin1'), target.toString('latin1'))) continue;
    const dangling = !fs.existsSync(full) ? ' (dangling)' : '';
    outside.push(`${show(link)} -> ${show(target)}${dangling}`);
  }
  if (outside.length === 0) return;
  throw new OutsideLinksError(
    `${outside.length} symlink(s) in ${workspace} point outside it, where local Bazel would follow them and the ` +
      `remote build cannot: ${outside.join(', ')}. Replace each with what it points to, or point it inside the ` +
      `workspace, or, if no build reads it, list it under "sync.exclude" in ${workspace}/${SETTINGS_FILE}.`,
  );
}

/**
 * rsync's unsafe_symlink(): absolute and empty targets leave; otherwise the target's `..` steps may
 * never climb above the transfer root, counted from the link's own directory (a `..` in the link's
 * path starts the count over, as in rsync).
 */
export function leavesTree(link: string, target: string): boolean {
  if (target === '' || target.startsWith('/')) return true;
  let depth = 0;
  for (const part of link.split('/').slice(0, -1)) {
    if (part === '..') depth = 0;
    else if (part !== '' && part !== '.') depth++;
  }
  for (const part of target.split('/')) {
    if (part === '..') {
      if (--depth < 0) return true;
    } else if (part !== '' && part !== '.') depth++;
  }
  return false;
}

/** A path for a message: as JSON when it is not plain UTF-8 text (newlines, invalid bytes). */
export function show(name: Buffer): string {
  const text = name.toString('utf8');
  return Buffer.from(text).equals(name) && !/[\0-\x1f\x7f]/.test(text) ? text : JSON.stringify(name.toString('latin1'));
}
