/**
 * Server-side apply: the backend states each object whole and the apiserver creates or updates
 * it, so every ensure-step converges however often it runs and wherever a previous run stopped.
 * `force` takes back fields someone else changed instead of answering 409 Conflict.
 */
import { PatchStrategy, setHeaderOptions, type KubernetesObject } from '@kubernetes/client-node';
import type { KubeApi } from './api';
import { kubeRequest } from './requests';

/** The field manager of everything the worker applies. */
export const FIELD_MANAGER = 'rbs-worker';

export async function apply<T extends KubernetesObject>(api: KubeApi, object: T): Promise<T> {
  const { kind, metadata } = object;
  const name = metadata?.namespace ? `${metadata.namespace}/${metadata.name}` : metadata?.name;
  return kubeRequest(`apply ${kind} ${name}`, () => api.objects.patch(object, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply));
}

/** For a JSON merge patch through the typed clients (whose patch default is a JSON patch). */
export const MERGE_PATCH = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
