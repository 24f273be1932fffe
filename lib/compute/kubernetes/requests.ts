/**
 * Kubernetes API requests as the backend makes them: errors that say which request failed and why
 * (the apiserver's own message), reads where absence is an answer, and waiting for an object to go.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Removal } from '../backend';

/** A failed API request: `code` is the HTTP status, the message names the request and the apiserver's reason. */
export class KubeRequestError extends Error {
  constructor(
    readonly request: string,
    readonly code: number | undefined,
    readonly detail: string,
  ) {
    super(`${request}: ${code ?? 'no response'}: ${detail}`);
    this.name = 'KubeRequestError';
  }
}

/** Runs one API request; any failure becomes a KubeRequestError naming `request`. */
export async function kubeRequest<T>(request: string, send: () => Promise<T>): Promise<T> {
  try {
    return await send();
  } catch (err) {
    throw asKubeRequestError(request, err);
  }
}

/** ApiException (client-node) carries `code` and the response body, a JSON Status as text. */
function asKubeRequestError(request: string, err: unknown): KubeRequestError {
  if (err instanceof KubeRequestError) return err;
  const { code, body, message } = err as { code?: unknown; body?: unknown; message?: string };
  if (typeof code !== 'number') return new KubeRequestError(request, undefined, message ?? String(err));
  let detail = typeof body === 'string' ? body : JSON.stringify(body);
  try {
    detail = (JSON.parse(detail) as { message?: string }).message ?? detail;
  } catch {
    // not a Status: keep the body as it came
  }
  return new KubeRequestError(request, code, detail || 'no details');
}

export function hasStatus(err: unknown, code: number): boolean {
  return err instanceof KubeRequestError && err.code === code;
}

/** The object read by `read`, or null if it does not exist. */
export async function readOrNull<T>(request: string, read: () => Promise<T>): Promise<T | null> {
  try {
    return await kubeRequest(request, read);
  } catch (err) {
    if (hasStatus(err, 404)) return null;
    throw err;
  }
}

/** Deletes an object; one that is already gone is fine. */
export async function deleteIfPresent(request: string, remove: () => Promise<unknown>): Promise<void> {
  await readOrNull(request, remove);
}

/** How often an object made again under its name between a read and its deletion is read and judged afresh. */
const REPLACED_LOOKS = 3;

/**
 * Deletes `what` (e.g. "namespace x"), the object `read` finds, if `judge` says so (it may throw, to
 * refuse loudly), naming the very object read (a UID precondition): one made again under its name since
 * is not deleted unjudged, but read and judged afresh. Then waits until that very object is gone
 * (`gone`, given its UID). 'removed' also when there was none; 'spared' when `judge` kept the one there.
 */
export async function deleteJudged<T extends { metadata?: { uid?: string } }>(
  what: string,
  read: () => Promise<T | null>,
  judge: (object: T) => boolean,
  remove: (object: T, preconditions: { uid: string }) => Promise<unknown>,
  gone: (uid: string) => Promise<void>,
): Promise<Removal> {
  for (let look = 1; ; look++) {
    const object = await read();
    if (!object) return 'removed';
    if (!judge(object)) return 'spared';
    const uid = object.metadata!.uid!;
    try {
      await deleteIfPresent(`delete ${what}`, () => remove(object, { uid }));
    } catch (err) {
      // A failed precondition is a 409 Conflict.
      if (!hasStatus(err, 409) || look >= REPLACED_LOOKS) throw err;
      continue;
    }
    await gone(uid);
    return 'removed';
  }
}

const GONE_POLL_MS = 200;
const GONE_POLL_MAX_MS = 2000;

/**
 * Polls `read` until the object is gone (null). A deletion with finalizers (namespaces, volumes)
 * takes as long as its controllers do; past `timeoutMs` the caller's retry takes over.
 */
export async function waitUntilGone(what: string, read: () => Promise<unknown>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  // Deleting a namespace takes the namespace controller seconds: polls back off, so that many
  // deletions at once do not load the apiserver with reads.
  for (let pause = GONE_POLL_MS; (await read()) !== null; pause = Math.min(pause * 2, GONE_POLL_MAX_MS)) {
    if (Date.now() > deadline) throw new Error(`${what} is still there ${timeoutMs} ms after its deletion`);
    await sleep(pause);
  }
}
