/**
 * Server-side apply: the backend states each object whole and the apiserver creates or updates
 * it, so every ensure-step converges however often it runs and wherever a previous run stopped.
 * `force` takes back fields someone else changed instead of answering 409 Conflict.
 */
import { PatchStrategy, setHeaderOptions, type KubernetesObject } from '@kubernetes/client-node';
import { NamespaceGoneError } from '../backend';
import type { KubeApi } from './api';
import { KubeRequestError, kubeRequest } from './requests';

/** The field manager of everything the worker applies. */
export const FIELD_MANAGER = 'rbs-worker';

export async function apply<T extends KubernetesObject>(api: KubeApi, object: T): Promise<T> {
  const { kind, metadata } = object;
  const name = metadata?.namespace ? `${metadata.namespace}/${metadata.name}` : metadata?.name;
  try {
    return await kubeRequest(`apply ${kind} ${name}`, () =>
      api.objects.patch(object, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply),
    );
  } catch (err) {
    throw (metadata?.namespace && namespaceGone(err, metadata.namespace)) || err;
  }
}

/**
 * An earlier step made the session's namespace; if it is not there, or is being deleted, someone
 * removed it, and no retry brings it back: the session fails at once (activities/provisioning.ts).
 */
function namespaceGone(err: unknown, namespace: string): NamespaceGoneError | undefined {
  if (!(err instanceof KubeRequestError)) return undefined;
  const missing = err.code === 404 && err.detail === `namespaces "${namespace}" not found`;
  const terminating = err.code === 403 && err.detail.includes(`in namespace ${namespace} because it is being terminated`);
  if (missing || terminating) return new NamespaceGoneError(`namespace ${namespace} was removed under its session: ${err.message}`);
  return undefined;
}

/** For a JSON merge patch through the typed clients (whose patch default is a JSON patch). */
export const MERGE_PATCH = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
