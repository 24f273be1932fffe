/**
 * Bazel's convenience links in a workspace (4.2.3): `<prefix>bin`, `<prefix>out`,
 * `<prefix>testlogs` and `<prefix><workspace directory's name>`, the prefix being
 * --symlink_prefix (default `bazel-`; `/` means none). The agent reads its own, the proxy makes
 * the laptop's: both find the prefix here, from the same request.
 */
import { effectiveOption } from './options';

/** `execroot` stands for the link named after the workspace directory, which points at the execroot. */
export const LINK_ROLES = ['bin', 'out', 'testlogs', 'execroot'] as const;
export type LinkRole = (typeof LINK_ROLES)[number];

export const DEFAULT_SYMLINK_PREFIX = 'bazel-';

export type SymlinkPrefix = { prefix: string } | { none: true } | { refused: string };

/** The --symlink_prefix in effect; one naming a directory, or one this cannot place, is refused. */
export function symlinkPrefixOf(args: string[]): SymlinkPrefix {
  const option = effectiveOption(args, 'symlink_prefix');
  if (option && 'unknown' in option) return { refused: option.unknown };
  const prefix = option?.value ?? DEFAULT_SYMLINK_PREFIX;
  if (prefix === '/') return { none: true };
  if (prefix.includes('/') || prefix.includes('\0')) return { refused: `--symlink_prefix=${prefix} (a prefix naming a directory)` };
  return { prefix };
}

/** The link's name in a workspace whose directory is named `workspaceName`. */
export function linkName(prefix: string, role: LinkRole, workspaceName: string): string {
  return `${prefix}${role === 'execroot' ? workspaceName : role}`;
}
