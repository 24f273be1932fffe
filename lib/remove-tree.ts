/**
 * Removing a directory tree that builds wrote. Builds leave read-only directories behind (Go's
 * module cache, Bazel's tree artifacts and external repositories), and unlinking inside one fails
 * with EACCES for anyone but root, for ever: so writability is given back to each directory first,
 * as `chmod -R u+w` would, without following symbolic links out of the tree.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export function removeTree(dir: string): void {
  try {
    fs.rmSync(dir, { recursive: true, force: true });
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EACCES' && code !== 'EPERM') throw new Error(`cannot remove ${dir}: ${(err as Error).message}`);
  }
  makeWritable(dir);
  try {
    fs.rmSync(dir, { recursive: true, force: true });
  } catch (err) {
    throw new Error(`cannot remove ${dir}, even with its directories made writable: ${(err as Error).message}`);
  }
}

/** u+rwx on `dir` and every directory below it (lstat: a link to a directory elsewhere is left alone). */
function makeWritable(dir: string): void {
  const pending = [dir];
  while (pending.length > 0) {
    const current = pending.pop()!;
    let stat: fs.Stats;
    try {
      stat = fs.lstatSync(current);
    } catch {
      continue; // gone meanwhile
    }
    if (!stat.isDirectory()) continue;
    if ((stat.mode & 0o700) !== 0o700) fs.chmodSync(current, stat.mode | 0o700);
    for (const name of fs.readdirSync(current)) pending.push(path.join(current, name));
  }
}
