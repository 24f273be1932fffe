/**
 * Watches a directory tree with @parcel/watcher and says when it may have missed something.
 *
 * What @parcel/watcher 2.6.0's Linux backend (src/linux/InotifyBackend.cc) does and does not tell:
 * - a watch it cannot add while subscribing (e.g. ENOSPC, the user's inotify watch limit) rejects
 *   subscribe(); an inotify read error reaches the callback as `err`, and the subscription is dead;
 * - IN_Q_OVERFLOW is skipped without a word, and so is a directory created later that it cannot
 *   watch (its events are simply never seen).
 * So a failed subscription, a watcher error and a cookie that never comes are doubts here, and
 * every new directory is checked against the process's inotify watches (lib/watch/inotify-watches).
 * An overflow stays invisible: callers treat a round with many changed paths (which is what fills
 * a queue) as "anything changed"; a burst of repeated events on a few paths cannot be told apart.
 * Events arrive batched after a debounce, so settle() writes a cookie file and waits for its event:
 * events queue in order, so once it is seen every change made before settle() was called is in.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import watcher from '@parcel/watcher';
import { unwatchedDirectories } from './inotify-watches';

export interface TreeWatchListener {
  /** Workspace-relative paths created, changed or deleted (a directory stands for its whole tree). */
  onChanges(paths: string[]): void;
  /** The watch may have missed changes: assume anything changed. */
  onDoubt(why: string): void;
}

export interface TreeWatch {
  /** Resolves once the tree is watched (or watching failed, which was reported as a doubt). */
  readonly ready: Promise<void>;
  /** Resolves once every change made before the call has reached the listener (or a doubt has). */
  settle(): Promise<void>;
  close(): Promise<void>;
}

/** Top-level names never reported: cookie files of this module. */
export const COOKIE_PREFIX = 'bazel-rbs-cookie-';

/** A cookie unseen for this long means the watch is stuck or dropped it (an overflow does). */
const SETTLE_TIMEOUT_MS = 10_000;

let cookieCounter = 0;

/** `ignore`: workspace-relative directories not watched at all (e.g. `.git`). */
export function watchTree(root: string, listener: TreeWatchListener, ignore: string[] = []): TreeWatch {
  root = path.resolve(root);
  const waiting = new Map<string, () => void>();
  let subscription: Promise<watcher.AsyncSubscription | null>;
  let closed = false;

  const doubt = (why: string) => {
    if (!closed) listener.onDoubt(why);
  };

  const onEvents = (err: Error | null, events: watcher.Event[]) => {
    if (closed) return;
    if (err) {
      return restart(`the watcher of ${root} failed: ${err.message}`);
    }
    const changed: string[] = [];
    const created: string[] = [];
    for (const event of events) {
      const relative = path.relative(root, event.path);
      if (relative.startsWith(COOKIE_PREFIX) && !relative.includes('/')) {
        waiting.get(relative)?.();
        continue;
      }
      if (relative === '' || relative.startsWith('..')) {
        doubt(`the watcher reported ${event.type} of ${event.path}, ${relative === '' ? 'the root itself' : 'outside the tree'}`);
        continue;
      }
      changed.push(relative);
      if (event.type === 'create') created.push(event.path);
    }
    if (changed.length > 0) listener.onChanges(changed);
    const unwatched = unwatchedDirectories(created);
    if (unwatched.length > 0) {
      restart(`cannot watch new directories (the inotify watch limit, fs.inotify.max_user_watches?): ${unwatched.slice(0, 3).join(', ')}`);
    }
  };

  const subscribe = () =>
    watcher.subscribe(root, onEvents, { ignore }).catch((err: Error) => {
      doubt(`cannot watch ${root}: ${err.message}`);
      return null;
    });

  /**
   * Watches afresh. Changes between the old subscription's end and the new one's start are lost, so
   * the doubt is reported again once the new one is up, before anyone awaiting it goes on.
   */
  function restart(why: string): void {
    doubt(why);
    const old = subscription;
    subscription = old
      .then((s) => s?.unsubscribe().catch(() => undefined))
      .then(() => (closed ? null : subscribe()))
      .then((s) => (doubt(`watching ${root} again after: ${why}`), s));
  }

  subscription = subscribe();
  const ready = subscription.then(() => undefined);

  async function settle(): Promise<void> {
    if (!(await subscription)) return doubt(`${root} is not watched`);
    const name = `${COOKIE_PREFIX}${process.pid}-${++cookieCounter}`;
    const file = path.join(root, name);
    let timer: NodeJS.Timeout | undefined;
    const seen = new Promise<boolean>((resolve) => {
      waiting.set(name, () => resolve(true));
      timer = setTimeout(() => resolve(false), SETTLE_TIMEOUT_MS);
    });
    try {
      fs.writeFileSync(file, '', { flag: 'wx' });
      if (!(await seen)) {
        restart(`the watcher of ${root} did not report its cookie ${name} within ${SETTLE_TIMEOUT_MS} ms`);
      }
    } catch (err) {
      doubt(`cannot write the watch cookie ${file}: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
      waiting.delete(name);
      fs.rmSync(file, { force: true });
    }
  }

  return {
    ready,
    settle,
    async close() {
      closed = true;
      await (await subscription)?.unsubscribe().catch(() => undefined);
    },
  };
}
