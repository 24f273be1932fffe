/**
 * Fetches named paths under the laptop's output base from the same paths under the agent's: the
 * local rsync pulls over the agent's Fetch stream (rsync-transport.ts), so only what changed
 * travels (quick check, delta transfer) and bytes stream with backpressure, whatever their size.
 * Whatever the agent says, nothing lands outside the output base: the names are checked first, no
 * directory on their way may be a symlink, rsync accepts only the names it asked for and drops
 * links that climb out (--safe-links), and each named path is checked once it has arrived. A
 * failed fetch removes the named paths, so no stale copy looks fresh.
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AgentClient } from '../../gen/proto/rbs/v1/Agent';
import { rsyncToAgent } from './rsync-transport';

export interface FetchStats {
  /** Regular files rsync transferred (it skips those its quick check finds unchanged). */
  files: number;
  /** Their bytes. */
  bytes: number;
  ms: number;
}

export interface FetchOptions {
  /** The mTLS client of the session's agent. */
  agent: AgentClient;
  /** The client's output base on this machine. */
  outputBase: string;
  /**
   * Paths relative to the output base, under `execroot/<workspace name>/bazel-out/`; a directory
   * comes with everything in it (a runfiles tree, say).
   */
  paths: string[];
  /** Interrupts the fetch: the named paths are removed, as after any failed fetch. */
  signal?: AbortSignal;
}

/** Where outputs may land: Bazel's output tree, never the execroot's links to the sources. */
const OUTPUT_PATH = /^execroot\/[^/]+\/bazel-out(?:\/|$)/;

/** Why `relative` may not be fetched, or null. */
export function refusedOutputPath(relative: string): string | null {
  if (/[\0-\x1f\x7f]/.test(relative)) return 'it holds a control character';
  if (path.posix.isAbsolute(relative) || path.posix.normalize(relative) !== relative || relative.split('/').includes('..')) {
    return 'it is not a plain relative path';
  }
  if (!OUTPUT_PATH.test(relative)) return 'it is not under execroot/<workspace>/bazel-out/';
  return null;
}

/** rsync on this side: only the listed names, links kept if they stay inside, times, exec bits. */
const RSYNC_FLAGS = ['--from0', '--recursive', '--links', '--safe-links', '--times', '--executability', '--stats'];

/** Fetches `paths` (see FetchOptions); throws naming the path or the reason, after removing them. */
export async function fetchFromOutputBase({ agent, outputBase, paths, signal }: FetchOptions): Promise<FetchStats> {
  const started = performance.now();
  const base = path.resolve(outputBase);
  for (const relative of paths) {
    const why = refusedOutputPath(relative);
    if (why) throw new Error(`refused to fetch ${JSON.stringify(relative)} into ${base}: ${why}`);
  }
  if (paths.length === 0) return { files: 0, bytes: 0, ms: 0 };
  await fs.mkdir(base, { recursive: true });
  await checkDirectoriesOnTheWay(base, paths);
  const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'rbs-fetch-'));
  const fetchId = randomUUID();
  try {
    const list = path.join(scratch, 'files');
    await fs.writeFile(list, paths.map((p) => `${p}\0`).join(''));
    const stdout = await rsyncToAgent({
      agent,
      syncId: fetchId,
      stream: 'fetch',
      args: [...RSYNC_FLAGS, `--files-from=${list}`, 'agent:.', `${base}/`],
      cwd: base,
      signal,
      describe: `fetch ${fetchId} of ${paths.length} paths (${paths[0]}${paths.length > 1 ? ', …' : ''}) into ${base}`,
    });
    await checkArrived(base, paths);
    return { ...transferred(stdout), ms: Math.round(performance.now() - started) };
  } catch (err) {
    await removeFromOutputBase(base, paths).catch(() => undefined);
    throw err;
  } finally {
    await fs.rm(scratch, { recursive: true, force: true });
  }
}

/** Removes `paths` (checked as for a fetch) from the output base: copies that would look fresh but are not. */
export async function removeFromOutputBase(outputBase: string, paths: string[]): Promise<void> {
  const base = path.resolve(outputBase);
  for (const relative of paths) {
    const why = refusedOutputPath(relative);
    if (why) throw new Error(`refused to remove ${JSON.stringify(relative)} from ${base}: ${why}`);
  }
  await checkDirectoriesOnTheWay(base, paths);
  await Promise.all(paths.map((relative) => fs.rm(path.join(base, relative), { recursive: true, force: true })));
}

/** Every existing directory between the output base and a named path must be a directory, not a link to elsewhere. */
async function checkDirectoriesOnTheWay(base: string, paths: string[]): Promise<void> {
  const checked = new Set<string>();
  for (const relative of paths) {
    const parts = relative.split('/');
    for (let depth = 1; depth < parts.length; depth++) {
      const dir = parts.slice(0, depth).join('/');
      if (checked.has(dir)) continue;
      checked.add(dir);
      const stat = await fs.lstat(path.join(base, dir)).catch(() => undefined);
      if (!stat) break; // rsync creates it, and what lies below it, as directories
      if (!stat.isDirectory()) throw new Error(`refused to fetch ${relative}: ${path.join(base, dir)} is not a directory (a symlink?)`);
    }
  }
}

/** Each named path is there, and a link stays inside the output base. */
async function checkArrived(base: string, paths: string[]): Promise<void> {
  for (const relative of paths) {
    const file = path.join(base, relative);
    const stat = await fs.lstat(file).catch(() => undefined);
    if (!stat) throw new Error(`the agent did not send ${relative} (or it was a link out of the output base) to ${base}`);
    if (!stat.isSymbolicLink()) continue;
    // By real path, not by the link's text: a link to a link (a runfiles tree's, into the
    // workspace) may look inside and lead out.
    const target = await fs.realpath(file).catch(() => path.resolve(path.dirname(file), '(dangling)'));
    const realBase = await fs.realpath(base);
    if (target !== realBase && !target.startsWith(`${realBase}/`)) throw new Error(`${file} arrived as a link out of the output base, to ${target}`);
  }
}

/** The transfer figures of rsync's --stats. */
function transferred(stats: string): { files: number; bytes: number } {
  const figure = (label: string) => Number(new RegExp(`^${label}: ([\\d,]+)`, 'm').exec(stats)?.[1].replace(/,/g, '') ?? NaN);
  const files = figure('Number of regular files transferred');
  const bytes = figure('Total transferred file size');
  if (Number.isNaN(files) || Number.isNaN(bytes)) throw new Error(`rsync's --stats are missing from its output: ${stats.slice(-500)}`);
  return { files, bytes };
}
