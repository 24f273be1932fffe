/**
 * One watch request for one object, by name, from a list's resourceVersion: what waiting on the
 * apiserver costs a request per change, where polling costs one per look.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeApi } from './api';
import { kubeRequest } from './requests';

/** Longest single watch request: the apiserver ends it, and the caller lists again from there. */
export const MAX_WATCH_MS = 60_000;
/** After a watch that failed at once (not merely ended), before listing again. */
export const WATCH_RETRY_MS = 1_000;

/**
 * Watches the object `name` in the collection at `path` (e.g. /api/v1/namespaces) from `resourceVersion`,
 * for at most `windowMs`. `decide` sees each change (null once the object is deleted) and settles the
 * watch by returning anything but undefined. Resolves with that, 'ended' when the watch ends (time up,
 * 410 Gone, closed, `signal` aborted) and 'failed' when it could not start or the apiserver sent another error.
 */
export function watchOne<T, R>(
  api: KubeApi,
  path: string,
  name: string,
  resourceVersion: string | undefined,
  windowMs: number,
  decide: (object: T | null) => R | undefined,
  signal?: AbortSignal,
): Promise<R | 'ended' | 'failed'> {
  return new Promise((resolve) => {
    let controller: AbortController | undefined;
    let settled = false;
    const finish = (outcome: R | 'ended' | 'failed') => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      controller?.abort();
      resolve(outcome);
    };
    const onAbort = () => finish('ended');
    const timer = setTimeout(() => finish('ended'), windowMs);
    signal?.addEventListener('abort', onAbort);
    if (signal?.aborted) return finish('ended');
    const query = {
      fieldSelector: `metadata.name=${name}`,
      resourceVersion,
      allowWatchBookmarks: true,
      timeoutSeconds: Math.ceil(windowMs / 1000) + 1,
    };
    api.watch
      .watch(
        path,
        query,
        (type: string, object: T) => {
          // 410 Gone: the resourceVersion expired, list afresh now; any other error, after a pause.
          if (type === 'ERROR') return finish((object as { code?: number }).code === 410 ? 'ended' : 'failed');
          if (type === 'BOOKMARK') return;
          const decided = decide(type === 'DELETED' ? null : object);
          if (decided !== undefined) finish(decided);
        },
        (err: unknown) => finish(err ? 'failed' : 'ended'),
      )
      .then(
        (c) => {
          controller = c;
          if (settled) c.abort();
        },
        () => finish('failed'),
      );
  });
}

/** A list of objects by name, as the apiserver answers it: the resourceVersion a watch starts from. */
type Listed<T> = { items: T[]; metadata?: { resourceVersion?: string } };

/**
 * Waits up to `timeoutMs` until the object of `uid` named `name` in the collection at `path` is gone: a
 * list (`list`, by name), then a watch from there, listing again when a watch ends. A deletion that
 * waits on controllers (a namespace's contents, a pod's kubelet) costs a list and a watch, not a read
 * per look.
 */
export async function watchUntilGone<T extends { metadata?: { uid?: string } }>(
  api: KubeApi,
  what: string,
  path: string,
  name: string,
  list: () => Promise<Listed<T>>,
  uid: string,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const present = (object: T | null) => object?.metadata?.uid === uid;
  for (;;) {
    const listed = await kubeRequest(`list ${what}`, list);
    if (!listed.items.some(present)) return;
    const remainingMs = deadline - Date.now();
    if (remainingMs <= 0) throw new Error(`${what} is still there ${timeoutMs} ms after its deletion`);
    const windowMs = Math.min(remainingMs, MAX_WATCH_MS);
    const watched = await watchOne<T, 'gone'>(api, path, name, listed.metadata?.resourceVersion, windowMs, (object) => (present(object) ? undefined : 'gone'));
    if (watched === 'gone') return;
    if (watched === 'failed') await sleep(Math.min(WATCH_RETRY_MS, Math.max(0, deadline - Date.now())));
  }
}
