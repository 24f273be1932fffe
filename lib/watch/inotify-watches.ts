/**
 * Which new directories no inotify watch of this process covers. @parcel/watcher adds a watch for a
 * directory it sees created but not for directories made inside it before that watch began (as
 * `mkdir -p` or a moved-in tree does), and a failed watch (the watch limit) goes unreported; the
 * kernel lists every watch of an inotify descriptor, by inode, in /proc/self/fdinfo.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * `created`: absolute paths reported created. Returns those directories (or directories below them)
 * not watched, leaving out those `ignored` says are not meant to be.
 */
export function unwatchedDirectories(created: string[], ignored: (dir: string) => boolean): string[] {
  if (process.platform !== 'linux' || created.length === 0) return [];
  const directories = created.flatMap((top) => directoriesUnder(top, ignored));
  if (directories.length === 0) return [];
  const watched = watchedInodes();
  return directories.filter((dir) => !watched.has(dir.ino)).map((dir) => dir.path);
}

/** `top` and every directory below it that still exists and is not ignored, symlinks not followed. */
function directoriesUnder(top: string, ignored: (dir: string) => boolean): { path: string; ino: number }[] {
  if (ignored(top)) return [];
  const stat = fs.lstatSync(top, { throwIfNoEntry: false });
  if (!stat?.isDirectory()) return [];
  const found = [{ path: top, ino: stat.ino }];
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(top, { withFileTypes: true });
  } catch {
    return found; // gone again, or unreadable: its watch is checked all the same
  }
  for (const entry of entries) if (entry.isDirectory()) found.push(...directoriesUnder(path.join(top, entry.name), ignored));
  return found;
}

/** Inodes watched by any inotify descriptor of this process (fdinfo lines `inotify wd:… ino:<hex> …`). */
function watchedInodes(): Set<number> {
  const inodes = new Set<number>();
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    let info: string;
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`) !== 'anon_inode:inotify') continue;
      info = fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
    } catch {
      continue; // closed meanwhile
    }
    for (const match of info.matchAll(/^inotify wd:\S+ ino:([0-9a-f]+) /gm)) inodes.add(parseInt(match[1], 16));
  }
  return inodes;
}
