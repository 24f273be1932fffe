/**
 * What the agent pod's status, or the apiserver's refusal to create it, says: ready, failed for
 * good (with a reason the session can end on), or still coming. Pure, so every case is unit-tested.
 */
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { AgentStartError, type AgentProgress, type AgentStartFailure } from '../backend';
import { AGENT, LABEL } from './objects';
import { KubeRequestError } from './requests';

/**
 * How long a node's kubelet may be silent (Ready Unknown) before its agent counts as lost. Its pod
 * is then deleted without its kubelet's word and replaced elsewhere. The agent there may still run:
 * the volume lease (services/agent/volume-lease.ts) makes it stop before its successor builds.
 */
export const NODE_LOST_AFTER_MS = 30_000;

/** A pull that failed once (ErrImagePull) is retried by the kubelet; these are past hoping. */
const IMAGE_FAILURES = ['ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull'];
const CONFIG_FAILURES = ['CreateContainerConfigError', 'CreateContainerError'];

/** What a pod's status says about the agent. */
export type PodVerdict =
  { kind: 'ready' } | { kind: 'failed'; reason: AgentStartFailure; detail: string } | { kind: 'pending'; progress: AgentProgress; unschedulable: boolean };

const pending = (stage: AgentProgress['stage'], detail: string, unschedulable = false): PodVerdict => ({
  kind: 'pending',
  progress: { stage, detail },
  unschedulable,
});

export function judgePod(pod: V1Pod | null, sessionId: string): PodVerdict {
  if (!pod) return pending('waiting', 'the agent pod does not exist');
  if (pod.metadata?.labels?.[LABEL.sessionId] !== sessionId) {
    return pending('waiting', `the agent pod belongs to session ${pod.metadata?.labels?.[LABEL.sessionId]}`);
  }
  if (pod.metadata?.deletionTimestamp) return pending('waiting', 'the agent pod is terminating');
  const status = pod.status ?? {};
  if (status.phase === 'Failed' || status.phase === 'Succeeded') {
    return { kind: 'failed', reason: 'PodFailed', detail: `the agent pod ended (${status.phase}): ${status.reason ?? ''} ${status.message ?? ''}`.trim() };
  }
  const container = status.containerStatuses?.find((c) => c.name === AGENT.name);
  const waiting = container?.state?.waiting;
  const why = waiting?.message ? `${waiting.reason}: ${waiting.message}` : `${waiting?.reason}`;
  if (waiting?.reason && IMAGE_FAILURES.includes(waiting.reason)) {
    return { kind: 'failed', reason: 'ImagePullBackOff', detail: `cannot pull image ${container?.image}: ${why}` };
  }
  if (waiting?.reason === 'CrashLoopBackOff') {
    const last = container?.lastState?.terminated;
    const exit = last ? `; last exit ${last.exitCode} (${last.reason ?? ''}) ${last.message ?? ''}`.trimEnd() : '';
    return { kind: 'failed', reason: 'CrashLoopBackOff', detail: `the agent keeps crashing: ${why}${exit}` };
  }
  if (waiting?.reason && CONFIG_FAILURES.includes(waiting.reason)) {
    return { kind: 'failed', reason: 'ContainerConfigError', detail: `the agent container cannot be created: ${why}` };
  }
  const condition = (type: string) => status.conditions?.find((c) => c.type === type);
  if (condition('Ready')?.status === 'True') return { kind: 'ready' };
  const scheduled = condition('PodScheduled');
  if (scheduled?.status === 'False') {
    // The cluster may yet grow a node for it: unschedulable is final only at the deadline.
    const unschedulable = scheduled.reason === 'Unschedulable';
    return pending('waiting', `not scheduled: ${scheduled.reason ?? ''} ${scheduled.message ?? ''}`.trim(), unschedulable);
  }
  if (container?.state?.running || container?.imageID) return pending('image pulled', 'waiting for the readiness probe');
  if (scheduled?.status === 'True' || pod.spec?.nodeName) return pending('scheduled', `on node ${pod.spec?.nodeName ?? '?'}`);
  return pending('waiting', 'waiting to be scheduled');
}

/** A pod create the apiserver refused for good (quota, Pod Security, invalid spec), else null. */
export function podRejection(err: unknown, namespace: string, sessionId: string): AgentStartError | null {
  if (!(err instanceof KubeRequestError)) return null;
  const agent = `agent of session ${sessionId} in ${namespace}`;
  // "status unknown for quota" is only the quota controller not having counted yet: retried.
  if (err.code === 403 && err.detail.includes('exceeded quota')) return new AgentStartError('QuotaExceeded', `${agent}: ${err.detail}`);
  if (err.code === 403 && err.detail.includes('violates PodSecurity')) return new AgentStartError('PodRejected', `${agent}: ${err.detail}`);
  if (err.code === 422) return new AgentStartError('PodRejected', `${agent}: ${err.detail}`);
  return null;
}

/**
 * Why a node counts as lost: Ready Unknown (the node lifecycle controller's word for a kubelet
 * that stopped reporting) for NODE_LOST_AFTER_MS by `nowMs`. Ready False is a kubelet that reports
 * (under pressure, say): it still runs its pods, and confirms their deletion, so that is not lost.
 */
export function nodeOutage(node: V1Node, nowMs: number): string | null {
  const ready = readyCondition(node);
  if (ready?.status !== 'Unknown') return null;
  const since = new Date(ready.lastTransitionTime ?? Number.NaN).getTime();
  if (!Number.isFinite(since) || nowMs - since < NODE_LOST_AFTER_MS) return null;
  return `its ${notReady(node, nowMs)}`;
}

/**
 * Why the node a volume is tied to cannot take the agent now (gone, not Ready, cordoned), else null: the
 * scheduler's message only counts nodes, and never says that the volume's one node is the one missing.
 */
export function volumeNodeTrouble(node: V1Node | null, name: string, nowMs: number): string | null {
  if (!node) return `node ${name} no longer exists`;
  if (readyCondition(node)?.status !== 'True') return notReady(node, nowMs);
  return node.spec?.unschedulable ? `node ${name} is cordoned (unschedulable)` : null;
}

const readyCondition = (node: V1Node) => node.status?.conditions?.find((c) => c.type === 'Ready');

/** 'node N has not been Ready for S s (status, reason: message)'; without a time of its own, for how long is not said. */
function notReady(node: V1Node, nowMs: number): string {
  const ready = readyCondition(node);
  const since = new Date(ready?.lastTransitionTime ?? Number.NaN).getTime();
  const period = Number.isFinite(since) ? ` for ${Math.round((nowMs - since) / 1000)} s` : '';
  const why = [ready?.reason, ready?.message].filter(Boolean).join(': ');
  return `node ${node.metadata?.name} has not been Ready${period} (${ready?.status ?? 'no Ready condition'}${why ? `, ${why}` : ''})`;
}
