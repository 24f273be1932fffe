/**
 * Bazel's convenience links in a workspace (4.2.3): `<prefix>bin`, `<prefix>out`,
 * `<prefix>testlogs` and `<prefix><workspace directory's name>`, the prefix being
 * --symlink_prefix (default `bazel-`; `/` means none). The agent reads its own, the proxy makes
 * the laptop's: both find the prefix here, from the same request.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
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

/**
 * The names of every link Bazel may make or remove at the top of a workspace named `workspaceName` for `args`:
 * the prefix's (genfiles too) and, beside another prefix, bazel-out; for each prefix Bazel may use, where a
 * config decides which. None for `/`; a prefix naming a directory puts its links below the top.
 */
export function linkNamesOf(args: string[], workspaceName: string): string[] {
  const option = effectiveOption(args, 'symlink_prefix');
  const prefixes = !option ? [DEFAULT_SYMLINK_PREFIX] : 'value' in option ? [option.value] : option.candidates;
  return prefixes
    .filter((prefix) => !prefix.includes('/') && !prefix.includes('\0'))
    .flatMap((prefix) => {
      const names = [...LINK_ROLES, 'genfiles' as const].map((role) => linkName(prefix, role, workspaceName));
      return prefix === DEFAULT_SYMLINK_PREFIX ? names : [...names, linkName(DEFAULT_SYMLINK_PREFIX, 'out', workspaceName)];
    });
}

/** The link's name in a workspace whose directory is named `workspaceName`. */
export function linkName(prefix: string, role: LinkRole | 'genfiles', workspaceName: string): string {
  return `${prefix}${role === 'execroot' ? workspaceName : role}`;
}

/** Where Bazel's links lead, below `<output base>/execroot/`: the execroot, bazel-out, or a configuration's bin, testlogs or genfiles. */
const LINK_TARGET_SHAPES = [/^[^/]+$/, /^[^/]+\/bazel-out$/, /^[^/]+\/bazel-out\/[^/]+\/(bin|testlogs|genfiles)$/];

/**
 * Whether the top-level entry `name` of `workspace` is a convenience link as Bazel makes them, under any
 * --symlink_prefix: a symlink whose target is an absolute path of one of LINK_TARGET_SHAPES in `outputBase`'s
 * execroot (local Bazel reads through a link of another shape there, a developer's own). Bytes are compared as
 * bytes (a name or base need not be UTF-8); one gone meanwhile is not a link.
 */
export function isConvenienceLink(workspace: string, name: Buffer, outputBase: string): boolean {
  let target: Buffer;
  try {
    target = fs.readlinkSync(Buffer.concat([Buffer.from(`${workspace}/`), name]), { encoding: 'buffer' });
  } catch {
    return false; // not a link, or gone
  }
  const normal = Buffer.from(path.posix.normalize(target.toString('latin1')), 'latin1');
  const execroot = Buffer.from(`${path.join(path.resolve(outputBase), 'execroot')}/`);
  if (normal.length <= execroot.length || !normal.subarray(0, execroot.length).equals(execroot)) return false;
  const below = normal.subarray(execroot.length).toString('latin1');
  return LINK_TARGET_SHAPES.some((shape) => shape.test(below));
}
