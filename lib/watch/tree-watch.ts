/**
 * Watches a directory tree with @parcel/watcher and says when it may have missed something.
 *
 * What @parcel/watcher 2.6.0's Linux backend (src/linux/InotifyBackend.cc) does and does not tell:
 * - a watch it cannot add while subscribing (e.g. ENOSPC, the user's inotify watch limit) rejects
 *   subscribe(); an inotify read error reaches the callback as `err`, and the subscription is dead;
 * - IN_Q_OVERFLOW is skipped without a word, and so is a directory created later that it cannot
 *   watch (its events are simply never seen).
 * So a failed subscription, a watcher error and a cookie that never comes are doubts here, and
 * every new directory is checked against the process's inotify watches (lib/watch/inotify-watches):
 * when one is not watched (made before its parent's watch began, as by mkdir -p or a moved-in tree),
 * a fresh subscription crawls the tree again, overlapping the old one so that nothing falls between.
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
  /** Paths relative to the root, created, changed or deleted (a directory stands for its whole tree). */
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

/** Names of this module's cookie files, never reported as changes. */
const COOKIE_PREFIX = 'bazel-rbs-cookie-';

export interface TreeWatchOptions {
  /** Paths relative to the root (directories: with all below them) or RegExps on such paths, not watched at all. */
  ignore?: (string | RegExp)[];
  /** Where cookies are written, relative to the root and watched: the root itself by default. */
  cookieDir?: string;
}

/** A cookie unseen for this long means the watch is stuck or dropped it (an overflow does). */
const SETTLE_TIMEOUT_MS = 10_000;

/** Any event of a cookie arrives well within this. */
const COOKIE_EVENTS_MS = 60_000;

let cookieCounter = 0;

/** One subscription of the tree; several overlap while a fresh one replaces an old one. */
interface Generation {
  readonly number: number;
  /** Null: subscribing failed (reported as a doubt). */
  readonly subscribed: Promise<watcher.AsyncSubscription | null>;
}

/**
 * @parcel/watcher keeps one directory tree per root path while any subscription of it lives, so a
 * fresh subscription overlapping the old one would not crawl again: every other one names the root
 * through /proc/self/root (Linux only, where re-watching happens).
 */
function aliasOf(root: string, generation: number): string {
  return process.platform === 'linux' && generation % 2 === 0 ? `/proc/self/root${root}` : root;
}

export function watchTree(root: string, listener: TreeWatchListener, { ignore = [], cookieDir = '' }: TreeWatchOptions = {}): TreeWatch {
  root = path.resolve(root);
  const ignored = (dir: string) => {
    const relative = path.relative(root, dir);
    return relative !== '' && ignore.some((rule) => (typeof rule === 'string' ? relative === rule || relative.startsWith(`${rule}/`) : rule.test(relative)));
  };
  const cookies = path.join(root, cookieDir);
  /** `<generation>:<cookie path>` → what its event resolves. */
  const waiting = new Map<string, () => void>();
  /** Cookies whose events may still come (to any generation), by when they were written: not changes. */
  const written = new Map<string, number>();
  let generations = 0;
  let current: Generation;
  /** Settles once the newest generation is up and its predecessor gone. */
  let switched: Promise<void> = Promise.resolve();
  let closed = false;

  const doubt = (why: string) => {
    if (!closed) listener.onDoubt(why);
  };

  function subscribe(): Generation {
    const number = ++generations;
    const base = aliasOf(root, number);
    const onEvents = (err: Error | null, events: watcher.Event[]) => {
      if (closed) return;
      if (err) return restart(`the watcher of ${root} failed: ${err.message}`);
      const changed: string[] = [];
      const created: string[] = [];
      for (const event of events) {
        const relative = path.relative(base, event.path);
        const file = path.join(root, relative);
        if (written.has(file)) {
          waiting.get(`${number}:${file}`)?.();
          continue;
        }
        if (relative === '' || relative.startsWith('..')) {
          doubt(`the watcher reported ${event.type} of ${event.path}, ${relative === '' ? 'the root itself' : 'outside the tree'}`);
          continue;
        }
        changed.push(relative);
        if (event.type === 'create') created.push(file);
      }
      if (changed.length > 0) listener.onChanges(changed);
      // The one before misses them too; one made during the newest's crawl is for verify().
      if (number === current.number && unwatchedDirectories(created, ignored).length > 0) rewatch();
    };
    const subscribed = watcher.subscribe(base, onEvents, { ignore }).catch((err: Error) => {
      doubt(`cannot watch ${root} (the inotify watch limit, fs.inotify.max_user_watches?): ${err.message}`);
      return null;
    });
    return { number, subscribed };
  }

  /**
   * A fresh subscription crawls and watches the whole tree again. The old one goes only once a
   * cookie shows that it has delivered everything from before the new one began.
   */
  function rewatch(): void {
    const old = current;
    const next = subscribe();
    current = next;
    switched = switched.then(async () => {
      if ((await next.subscribed) && (await old.subscribed)) await cookie(old);
      await (await old.subscribed)?.unsubscribe().catch(() => undefined);
      verify(next);
    });
  }

  /**
   * A directory made while a subscription crawled, after its parent was read but before the
   * parent's watch began, is watched by no one: look once a subscription is up, and start another.
   */
  function verify(generation: Generation): void {
    if (generation === current && !closed && unwatchedDirectories([root], ignored).length > 0) rewatch();
  }

  /** Starts over after a failure: changes until the new subscription is up may be lost. */
  function restart(why: string): void {
    doubt(why);
    const old = current;
    // Its cookies will never come: the doubt covers what they were waiting for.
    for (const [key, seen] of waiting) if (key.startsWith(`${old.number}:`)) seen();
    current = subscribe();
    const next = current;
    switched = switched.then(async () => {
      await (await old.subscribed)?.unsubscribe().catch(() => undefined);
      await next.subscribed;
      doubt(`watching ${root} again after: ${why}`);
    });
  }

  current = subscribe();
  const ready = current.subscribed.then(() => undefined);
  const first = current;
  switched = ready.then(() => verify(first));

  /** Writes a cookie and waits for `generation` to report it. */
  async function cookie(generation: Generation): Promise<void> {
    const file = path.join(cookies, `${COOKIE_PREFIX}${process.pid}-${++cookieCounter}`);
    const key = `${generation.number}:${file}`;
    for (const [old, at] of written) if (at < Date.now() - COOKIE_EVENTS_MS) written.delete(old);
    written.set(file, Date.now());
    let timer: NodeJS.Timeout | undefined;
    const seen = new Promise<boolean>((resolve) => {
      waiting.set(key, () => resolve(true));
      timer = setTimeout(() => resolve(false), SETTLE_TIMEOUT_MS);
    });
    try {
      fs.writeFileSync(file, '', { flag: 'wx' });
      if (!(await seen) && !closed) restart(`the watcher of ${root} did not report its cookie ${file} within ${SETTLE_TIMEOUT_MS} ms`);
    } catch (err) {
      doubt(`cannot write the watch cookie ${file}: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
      waiting.delete(key);
      fs.rmSync(file, { force: true });
    }
  }

  async function settle(): Promise<void> {
    for (;;) {
      const pending = switched;
      await pending;
      if (pending !== switched) continue; // another switch began meanwhile
      const generation = current;
      if (!(await generation.subscribed)) return doubt(`${root} is not watched`);
      await cookie(generation);
      // A batch before the cookie may have started a fresh subscription: settle on that one too.
      if (current === generation) return;
    }
  }

  return {
    ready,
    settle,
    async close() {
      closed = true;
      for (const seen of waiting.values()) seen(); // a closed watch has nothing more to wait for
      await switched;
      await (await current.subscribed)?.unsubscribe().catch(() => undefined);
    },
  };
}
