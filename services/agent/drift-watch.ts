/**
 * Notices the agent's copy of the workspace changing by any way but a sync: a build action writing
 * into the source tree, someone on the volume. Such a change invalidates the ledger, so the next
 * command and the next incremental sync are refused and the proxy syncs everything; that full sync
 * first deletes what drifted, so rsync sends it again even where size and mtime were put back.
 *
 * A full sync's receive is not watched at all: the watch stops for it and crawls the copy afresh
 * after it, so that tens of thousands of the sync's own events do not cost the sync CPU.
 *
 * What it cannot see: a foreign write during a sync's receive, or before the watch has caught up
 * after it (after a full sync: until its fresh crawl is done), which counts as the sync's; a write
 * by another client of the same volume over
 * NFS, which inotify never reports; and one whose event an inotify queue overflow dropped (which
 * @parcel/watcher does not report), unless the burst that overflowed it drifted 1,000 paths.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { linkNamesOf } from '../../lib/bazel/convenience-links';
import { removeTree } from '../../lib/remove-tree';
import { type TreeWatch, watchTree } from '../../lib/watch/tree-watch';

/** Beside the workspace copy: the watch's cookies. */
const COOKIE_DIR = '.rbs-watch';

/** Past this many drifted paths the copy is wiped instead. */
const MAX_PATHS = 1000;

export interface DriftListener {
  /** The copy no longer matches the last sync; `why` names what changed. */
  drifted(why: string): void;
}

export class DriftWatch {
  private tree: TreeWatch;
  /** Paths changed outside a sync; null: unknown which (wipe the copy). */
  private drifted: Set<string> | null = new Set();
  /** A sync's rsync is writing the copy. */
  private writing = false;
  /** Changes are the sync's: it is writing, or the watch has not caught up with it yet. */
  private receiving = false;
  /** Resolves once the last sync's receive has ended and its changes have all been seen. */
  private received: Promise<void> = Promise.resolve();
  private endOfReceive: () => void = () => undefined;
  /** The copy's directory itself: replaced, it is all new. */
  private readonly inode: number;
  readonly ready: Promise<void>;

  /** Top-level names of the convenience links the agent's Bazel was asked for (another --symlink_prefix's), beside bazel-*. */
  private readonly linkNames = new Set<string>();

  constructor(
    private readonly workspaceDir: string,
    private readonly listener: DriftListener,
  ) {
    this.inode = fs.statSync(workspaceDir).ino;
    fs.mkdirSync(path.join(path.dirname(workspaceDir), COOKIE_DIR), { recursive: true });
    this.tree = this.watch();
    this.ready = this.tree.ready;
  }

  /** Watched from its parent, so the cookies live beside the copy, where no build sees them. */
  private watch(): TreeWatch {
    const { workspaceDir } = this;
    const name = path.basename(workspaceDir);
    const only = new RegExp(`^(?!(?:${escapeRegExp(name)}|${escapeRegExp(COOKIE_DIR)})(?:/|$))`);
    return watchTree(
      path.dirname(workspaceDir),
      {
        onChanges: (paths) => {
          // Its own mtime changes with every entry made or removed; only a new directory there matters.
          if (paths.includes(name) && fs.statSync(workspaceDir, { throwIfNoEntry: false })?.ino !== this.inode) {
            return this.record(null, `${workspaceDir} itself was replaced`);
          }
          const inside = paths.filter((p) => p.startsWith(`${name}/`)).map((p) => p.slice(name.length + 1));
          this.record(inside.filter((p) => !this.isBazelLink(p)));
        },
        onDoubt: (why) => this.record(null, why),
      },
      { ignore: [only], cookieDir: COOKIE_DIR },
    );
  }

  /**
   * Resolves once every change made before the call has been attributed; at once while a sync is
   * writing, as the ledger refuses whatever would wait for it.
   */
  async settle(): Promise<void> {
    for (;;) {
      if (this.writing) return;
      const [received, tree] = [this.received, this.tree];
      await received;
      await tree.settle();
      if (received === this.received && tree === this.tree) return; // else a sync began meanwhile
    }
  }

  /**
   * A sync starts writing (after settle()). A full one first deletes what drifted, and stops the
   * watch until it ends; an incremental one never starts on a drifted copy (the ledger refuses it).
   */
  beginReceive(full: boolean): void {
    this.receiving = this.writing = true;
    let ended!: () => void;
    const receiveEnded = new Promise<void>((resolve) => (ended = resolve));
    this.endOfReceive = ended;
    if (!full) {
      // Its changes keep arriving until the watch has caught up.
      this.received = receiveEnded.then(() => this.tree.settle());
    } else {
      if (this.drifted === null) wipe(this.workspaceDir, (name) => this.isBazelLink(name));
      else for (const file of outermost(this.drifted)) removeInside(this.workspaceDir, file);
      this.drifted = new Set();
      const stopped = this.tree.close();
      this.received = Promise.all([stopped, receiveEnded]).then(() => {
        this.tree = this.watch();
        return this.tree.ready;
      });
    }
    this.received = this.received.then(() => void (this.receiving = false));
  }

  /**
   * A command with `args` is about to run: the links its Bazel writes (or removes) at the top of the copy are
   * not drift. By name, as bazel-* are: a build action that put a link into the execroot in a source's place still is.
   */
  expectLinksOf(args: string[]): void {
    for (const name of linkNamesOf(args, path.basename(this.workspaceDir))) this.linkNames.add(name);
  }

  /**
   * Bazel's convenience links, which the agent's own Bazel writes (or removes) at the top of its copy: a name it
   * uses, while that is a link or nothing (an empty --symlink_prefix names `bin`, which may be a source directory).
   */
  private isBazelLink(file: string): boolean {
    if (file.includes('/') || !(file.startsWith('bazel-') || this.linkNames.has(file))) return false;
    const stat = fs.lstatSync(path.join(this.workspaceDir, file), { throwIfNoEntry: false });
    return !stat || stat.isSymbolicLink();
  }

  /** The sync's rsync exited. */
  endReceive(): void {
    this.writing = false;
    this.endOfReceive();
  }

  async close(): Promise<void> {
    this.endOfReceive();
    await this.received;
    await this.tree.close();
  }

  private record(paths: string[] | null, doubt?: string): void {
    if (paths !== null && (this.receiving || paths.length === 0)) return; // a doubt counts even during a sync
    if (paths === null || this.drifted === null || this.drifted.size + paths.length > MAX_PATHS) this.drifted = null;
    else paths.forEach((p) => this.drifted!.add(p));
    const what = this.drifted === null ? `${doubt ?? 'too many changes'}: unknown which files` : [...this.drifted].slice(0, 3).join(', ');
    this.listener.drifted(`the agent's copy of the workspace changed outside a sync (${what})`);
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The paths of `files` not inside another of them. */
function outermost(files: Set<string>): string[] {
  return [...files].filter((file) => !file.split('/').some((_, i, parts) => i > 0 && files.has(parts.slice(0, i).join('/'))));
}

/**
 * Deletes `file` from the copy, never through a symlink: if a directory on the way is not one any
 * more (a build may have put a link there), that entry goes instead, and the sync brings it back.
 */
function removeInside(workspaceDir: string, file: string): void {
  const parts = file.split('/');
  let end = parts.length;
  for (let i = 1; i < parts.length; i++) {
    if (!fs.lstatSync(path.join(workspaceDir, ...parts.slice(0, i)), { throwIfNoEntry: false })?.isDirectory()) {
      end = i;
      break;
    }
  }
  removeTree(path.join(workspaceDir, ...parts.slice(0, end)));
}

/** Everything but Bazel's links: the next sync sends it all again. */
function wipe(workspaceDir: string, isBazelLink: (name: string) => boolean): void {
  for (const name of fs.readdirSync(workspaceDir)) if (!isBazelLink(name)) removeTree(path.join(workspaceDir, name));
}
