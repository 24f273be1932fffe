/** How much disk a directory tree takes, as `du` counts it: allocated blocks, links not followed. */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

/** Bytes allocated to `dir` and everything below it; null if `dir` does not exist. */
export async function treeBytes(dir: string): Promise<number | null> {
  let root;
  try {
    root = await fs.lstat(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  let bytes = root.blocks * 512;
  const pending = root.isDirectory() ? [dir] : [];
  while (pending.length > 0) {
    const current = pending.pop()!;
    // A directory a build made unreadable still takes its own blocks, counted above; its content cannot be seen.
    const entries = await fs.readdir(current, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      const full = path.join(current, entry.name);
      const stat = await fs.lstat(full).catch(() => null);
      if (!stat) continue; // removed meanwhile
      bytes += stat.blocks * 512;
      if (stat.isDirectory()) pending.push(full);
    }
  }
  return bytes;
}
