/**
 * Waiting for the agent pod: its Ready condition is the kubelet's gRPC readiness probe of the
 * agent, so the worker never dials agents in the cluster. A watch (re-listed when it ends or
 * expires with 410 Gone) follows the pod until it is ready, fails for good, or the deadline passes.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { V1Pod } from '@kubernetes/client-node';
import { AgentStartError, type AgentWait } from '../backend';
import type { KubeApi } from './api';
import { AGENT } from './objects';
import { type PodVerdict, judgePod } from './pod-status';
import { kubeRequest } from './requests';
import { MAX_WATCH_MS, WATCH_RETRY_MS, watchOne } from './watch-one';

/** Resolves once the session's agent pod is Ready; throws AgentStartError if it fails or the deadline passes. */
export async function waitForAgentPod(api: KubeApi, namespace: string, sessionId: string, wait: AgentWait): Promise<void> {
  const deadline = Date.now() + wait.deadlineMs;
  let reported = '';
  const judge = (pod: V1Pod | null): PodVerdict => {
    const verdict = judgePod(pod, sessionId);
    const progress = verdict.kind === 'pending' ? verdict.progress : verdict.kind === 'ready' ? { stage: 'ready' as const, detail: 'ready' } : null;
    if (progress && JSON.stringify(progress) !== reported) {
      reported = JSON.stringify(progress);
      wait.onProgress(progress);
    }
    return verdict;
  };
  let verdict: PodVerdict;
  for (;;) {
    wait.signal?.throwIfAborted();
    const list = await kubeRequest(`list pod ${namespace}/${AGENT.name}`, () =>
      api.core.listNamespacedPod({ namespace, fieldSelector: `metadata.name=${AGENT.name}` }),
    );
    verdict = judge(list.items[0] ?? null);
    const remainingMs = deadline - Date.now();
    if (verdict.kind !== 'pending' || remainingMs <= 0) break;
    const watched = await watchOne<V1Pod, PodVerdict>(
      api,
      `/api/v1/namespaces/${namespace}/pods`,
      AGENT.name,
      list.metadata?.resourceVersion,
      Math.min(remainingMs, MAX_WATCH_MS),
      (pod) => settled(judge(pod)),
      wait.signal,
    );
    if (watched === 'failed') await sleep(Math.min(WATCH_RETRY_MS, Math.max(0, deadline - Date.now())));
    else if (watched !== 'ended') verdict = watched;
    if (verdict.kind !== 'pending') break;
  }
  if (verdict.kind === 'ready') return;
  const agent = `agent of session ${sessionId} in ${namespace}`;
  if (verdict.kind === 'failed') throw new AgentStartError(verdict.reason, `${agent}: ${verdict.detail}`);
  const reason = verdict.unschedulable ? 'Unschedulable' : 'Timeout';
  const warning = verdict.unschedulable ? '' : await lastWarning(api, namespace);
  throw new AgentStartError(reason, `${agent} not ready after ${wait.deadlineMs} ms: ${verdict.progress.detail}${warning}`);
}

/** A verdict that ends the wait, or undefined while the pod is still on its way. */
const settled = (verdict: PodVerdict) => (verdict.kind === 'pending' ? undefined : verdict);

/** Longest warning message quoted (a probe's output can be long). */
const WARNING_CHARS = 400;

/**
 * What the kubelet last warned about the agent pod, which its status does not say: a volume that did not
 * mount (FailedMount), a probe that failed (Unhealthy). '' when there is none or it cannot be read: the
 * timeout is the news, this only explains it.
 */
async function lastWarning(api: KubeApi, namespace: string): Promise<string> {
  try {
    const { items } = await api.core.listNamespacedEvent({
      namespace,
      fieldSelector: `involvedObject.kind=Pod,involvedObject.name=${AGENT.name},type=Warning`,
    });
    const at = (e: (typeof items)[number]) => new Date(e.lastTimestamp ?? e.eventTime ?? e.metadata.creationTimestamp ?? 0).getTime();
    const last = items.sort((a, b) => at(a) - at(b)).pop();
    if (!last) return '';
    const message = (last.message ?? '').replace(/\s+/g, ' ').trim();
    return `; last warning: ${last.reason}: ${message.length > WARNING_CHARS ? `${message.slice(0, WARNING_CHARS)}…` : message}`;
  } catch {
    return '';
  }
}
