/**
 * Data-path benchmark: what a developer waits for. A no-op `bazel build` through RBS against the
 * same with plain local Bazel on a generated 10,000-file workspace; the initial sync (a fresh
 * session's agent, an empty volume) against plain local rsync; an incremental sync of one changed
 * file in a 100,000-file tree; Ctrl-C to the remote action's end. Real Bazel, real rsync, the whole
 * stack on this machine.
 */
import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { waitFor } from '../test/harness/wait';
import { type WorkspaceWatch, watchWorkspace } from '../services/proxy/workspace-watch';
import { writeTree } from '../test/sync/fixture';
import { startAgentProcess } from './agent-process';
import { noopBuilds, withBazelStack, writeTenThousandFiles } from './bazel-stack';
import { percentile, report, type Row } from './stats';

const NOOP_ROUNDS = 5;
const SYNC_ROUNDS = 5;
/**
 * Between one-file edits: an isolated change, as a developer makes one. @parcel/watcher delivers the
 * first event after 500 ms of quiet at once, and later ones in 50 ms batches; edits back to back
 * are measured too.
 */
const EDIT_GAP_MS = 600;

async function timed(what: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await what();
  return performance.now() - started;
}

/** The paths the watch reports next, as the proxy's next command would find them. */
async function nextChanges(watch: WorkspaceWatch): Promise<string[]> {
  const seen = await watch.take();
  if (seen.kind === 'paths') return seen.paths;
  throw new Error(seen.kind === 'everything' ? 'the watch lost track of the workspace' : 'the watch did not see the edit');
}

/** Makes `dir` a git repository with everything in it committed. */
function commitAll(dir: string): void {
  const git = (...args: string[]) =>
    execFileSync('git', ['-c', 'user.name=bench', '-c', 'user.email=bench@example.com', ...args], { cwd: dir, stdio: 'ignore' });
  git('init', '-q');
  git('add', '-A');
  git('commit', '-qm', 'the benchmark tree');
}

export async function syncFigures(): Promise<Row[]> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-bench-sync-'));
  try {
    return [...(await initialSyncFigures(root)), ...(await incrementalSyncFigures(root))];
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

/** The first sync of a new session, onto a fresh agent's empty volume, against local rsync -a. */
async function initialSyncFigures(root: string): Promise<Row[]> {
  const source = path.join(root, 'initial-source');
  fs.mkdirSync(source);
  writeTree(source, 10_000, (i) => 100 + (i % 900));
  commitAll(source); // the source set then comes from git, as in a developer's workspace
  // Interleaved, so a slow spell of the machine (disk writeback, other load) hits both alike.
  const plain: number[] = [];
  const ours: number[] = [];
  for (let i = 0; i < SYNC_ROUNDS; i++) {
    const local = path.join(root, `local-${i}`);
    plain.push(await timed(() => promisify(execFile)('rsync', ['-a', '--exclude=/.git', `${source}/`, `${local}/`])));
    const round = path.join(root, `session-${i}`);
    const f = await startAgentProcess(round, source);
    try {
      ours.push(await timed(() => f.sync()));
    } finally {
      await f.stop();
      fs.rmSync(round, { recursive: true, force: true });
      fs.rmSync(local, { recursive: true, force: true });
    }
  }
  return [
    { metric: 'initial sync, 10k files: RBS', value: Math.min(...ours), unit: 'ms' },
    { metric: 'initial sync, 10k files: local rsync -a', value: Math.min(...plain), unit: 'ms' },
    { metric: 'initial sync throughput vs local rsync', value: Math.min(...plain) / Math.min(...ours), unit: 'x', aim: '>= 0.9' },
  ];
}

/** One file changed in a 100,000-file tree: as the proxy does, the watch says what to sync. */
async function incrementalSyncFigures(root: string): Promise<Row[]> {
  const f = await startAgentProcess(path.join(root, 'incremental'));
  try {
    writeTree(f.source, 100_000, () => 64);
    commitAll(f.source);
    // The watch is up before the first (full) sync; later syncs send what it saw.
    const watch = watchWorkspace(f.source, (message) => console.log(message));
    const watchReady = await timed(() => watch.ready);
    try {
      await watch.take();
      await f.sync();
      const unchanged = (await f.sync()).ms;
      let edits = 0;
      /** Edits one file and syncs what the watch saw: the sync alone, and from the edit on. */
      const editAndSync = async () => {
        const edited = performance.now();
        fs.appendFileSync(path.join(f.source, 'd500', `f${50_000 + edits++}.txt`), 'edited');
        const changed = await nextChanges(watch);
        const sync = await timed(() => f.sync(changed));
        return { sync, changeToSynced: performance.now() - edited };
      };
      const isolated: { sync: number; changeToSynced: number }[] = [];
      const backToBack: { sync: number; changeToSynced: number }[] = [];
      for (let i = 0; i < SYNC_ROUNDS; i++) {
        await new Promise((resolve) => setTimeout(resolve, EDIT_GAP_MS));
        isolated.push(await editAndSync());
      }
      for (let i = 0; i < SYNC_ROUNDS; i++) backToBack.push(await editAndSync());
      const p50 = (rounds: typeof isolated, key: 'sync' | 'changeToSynced') =>
        percentile(
          rounds.map((r) => r[key]),
          50,
        );
      return [
        { metric: 'watching a 100k-file workspace: start', value: watchReady, unit: 'ms' },
        { metric: 'full sync, 100k files, nothing changed', value: unchanged, unit: 'ms' },
        { metric: 'sync, 100k files, one file changed (p50)', value: p50(isolated, 'sync'), unit: 'ms' },
        { metric: 'one file changed in 100k, change to sync done (p50)', value: p50(isolated, 'changeToSynced'), unit: 'ms', aim: '<= 100' },
        { metric: 'same, edits back to back: sync (p50)', value: p50(backToBack, 'sync'), unit: 'ms' },
        { metric: 'same, edits back to back: change to sync done (p50)', value: p50(backToBack, 'changeToSynced'), unit: 'ms' },
      ];
    } finally {
      watch.close();
    }
  } finally {
    await f.stop();
  }
}

async function bazelFigures(): Promise<Row[]> {
  return withBazelStack(async (ws) => {
    const { viaRbs, local } = await noopBuilds(ws, writeTenThousandFiles(ws), NOOP_ROUNDS);

    const { child, done } = ws.start(['build', ...ws.buildOptions, '//:slow']);
    await waitFor(() => ws.sleepers().length > 0, 60_000, 'the genrule to start sleeping');
    const interrupted = performance.now();
    child.kill('SIGINT');
    await done;
    const clientExit = performance.now() - interrupted;
    await waitFor(() => ws.sleepers().length === 0, 10_000, 'the remote action to stop');
    const remoteStop = performance.now() - interrupted;

    const median = (xs: number[]) => percentile(xs, 50);
    return [
      { metric: 'no-op build, 10k files: RBS (median)', value: median(viaRbs), unit: 'ms' },
      { metric: 'no-op build, 10k files: local Bazel (median)', value: median(local), unit: 'ms' },
      { metric: 'no-op build ratio RBS / local', value: median(viaRbs) / median(local), unit: 'x', aim: '<= 1.15' },
      { metric: 'Ctrl-C to client exit', value: clientExit, unit: 'ms' },
      { metric: 'Ctrl-C to remote action stopped', value: remoteStop, unit: 'ms', aim: '<= 2000' },
    ];
  });
}

export async function benchDataPath(): Promise<void> {
  const rows = [...(await bazelFigures()), ...(await syncFigures())];
  report('data-path', rows, { noopRounds: NOOP_ROUNDS, syncRounds: SYNC_ROUNDS, cpus: os.cpus().length });
}
