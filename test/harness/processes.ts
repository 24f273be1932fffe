/** Processes of this machine, found by their command line in /proc. */
import * as fs from 'node:fs';

/** Pids of processes (other than this one) whose NUL-separated command line `matches`. */
export function pidsWhere(matches: (cmdline: string) => boolean): number[] {
  return fs
    .readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name) && Number(name) !== process.pid)
    .flatMap((name) => {
      try {
        return matches(fs.readFileSync(`/proc/${name}/cmdline`, 'latin1')) ? [Number(name)] : [];
      } catch {
        return [];
      }
    });
}
