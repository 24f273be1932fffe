/** How the agent pod's status (as the kubelet and scheduler write it) and pod-create refusals are read. */
import type { V1Node, V1NodeSelectorRequirement, V1PersistentVolume, V1Pod } from '@kubernetes/client-node';
import { NODE_LOST_AFTER_MS, judgePod, nodeOutage, podRejection, volumeNodeTrouble } from '../../lib/compute/kubernetes/pod-status';
import { onlyNodeOf } from '../../lib/compute/kubernetes/volumes';
import { KubeRequestError } from '../../lib/compute/kubernetes/requests';

const SESSION = '3f2c7a4e-1b2d-4c5e-8f9a-0b1c2d3e4f50';

function pod(status: V1Pod['status'], extra: Partial<V1Pod['metadata']> = {}, nodeName?: string): V1Pod {
  return { metadata: { name: 'agent', labels: { 'rbs.dev/session-id': SESSION }, ...extra }, spec: { containers: [], nodeName }, status };
}
const waitingFor = (reason: string, message = 'why', extra = {}) => ({
  phase: 'Pending',
  containerStatuses: [{ name: 'agent', image: 'img:1', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason, message } }, ...extra }],
});

test('progress: waiting to be scheduled, scheduled, image pulled, ready', () => {
  expect(judgePod(null, SESSION)).toMatchObject({ kind: 'pending', progress: { stage: 'waiting' } });
  expect(judgePod(pod({ phase: 'Pending' }), SESSION)).toMatchObject({ kind: 'pending', progress: { stage: 'waiting', detail: 'waiting to be scheduled' } });
  const scheduled = pod({ phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'True' }] }, {}, 'node-1');
  expect(judgePod(scheduled, SESSION)).toMatchObject({ kind: 'pending', progress: { stage: 'scheduled', detail: 'on node node-1' } });
  const running = pod({
    phase: 'Running',
    conditions: [
      { type: 'PodScheduled', status: 'True' },
      { type: 'Ready', status: 'False' },
    ],
    containerStatuses: [{ name: 'agent', image: 'img:1', imageID: 'sha256:1', ready: false, restartCount: 0, state: { running: {} } }],
  });
  expect(judgePod(running, SESSION)).toMatchObject({ kind: 'pending', progress: { stage: 'image pulled' } });
  const ready = pod({ phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] });
  expect(judgePod(ready, SESSION)).toEqual({ kind: 'ready' });
});

test("another session's pod, or one terminating, is not this session's agent", () => {
  const ready = { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] };
  expect(judgePod(pod(ready, { labels: { 'rbs.dev/session-id': 'other' } }), SESSION)).toMatchObject({
    kind: 'pending',
    progress: { detail: expect.stringContaining('session other') },
  });
  expect(judgePod(pod(ready, { deletionTimestamp: new Date() }), SESSION)).toMatchObject({
    kind: 'pending',
    progress: { detail: 'the agent pod is terminating' },
  });
});

test('image pull back-off and its like fail for good; a first ErrImagePull does not', () => {
  for (const reason of ['ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull']) {
    expect(judgePod(pod(waitingFor(reason, 'nope')), SESSION)).toEqual({
      kind: 'failed',
      reason: 'ImagePullBackOff',
      detail: `cannot pull image img:1: ${reason}: nope`,
    });
  }
  expect(judgePod(pod(waitingFor('ErrImagePull')), SESSION).kind).toBe('pending');
});

test('a crash loop fails with the last exit; a container that cannot be created fails too', () => {
  const crashing = waitingFor('CrashLoopBackOff', 'back-off 10s', { lastState: { terminated: { exitCode: 2, reason: 'Error', message: 'bad flags' } } });
  expect(judgePod(pod(crashing), SESSION)).toEqual({
    kind: 'failed',
    reason: 'CrashLoopBackOff',
    detail: 'the agent keeps crashing: CrashLoopBackOff: back-off 10s; last exit 2 (Error) bad flags',
  });
  expect(judgePod(pod(waitingFor('CreateContainerConfigError', 'secret "agent-tls" not found')), SESSION)).toMatchObject({
    kind: 'failed',
    reason: 'ContainerConfigError',
  });
});

test('an ended pod fails; an unschedulable one waits, marked as such, for the deadline', () => {
  expect(judgePod(pod({ phase: 'Failed', reason: 'Evicted', message: 'low on memory' }), SESSION)).toEqual({
    kind: 'failed',
    reason: 'PodFailed',
    detail: 'the agent pod ended (Failed): Evicted low on memory',
  });
  const unschedulable = pod({
    phase: 'Pending',
    conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes are available' }],
  });
  expect(judgePod(unschedulable, SESSION)).toEqual({
    kind: 'pending',
    progress: { stage: 'waiting', detail: 'not scheduled: Unschedulable 0/3 nodes are available' },
    unschedulable: true,
  });
});

test('pod-create refusals: quota and Pod Security are final, an uncounted quota and other errors are retried', () => {
  const refusal = (code: number, detail: string) => podRejection(new KubeRequestError('apply Pod ns/agent', code, detail), 'ns', SESSION);
  expect(refusal(403, 'pods "agent" is forbidden: exceeded quota: session-quota, requested: limits.cpu=2')).toMatchObject({
    name: 'AgentStartError',
    reason: 'QuotaExceeded',
    message: expect.stringMatching(/^QuotaExceeded: agent of session .* in ns: pods "agent" is forbidden: exceeded quota/),
  });
  expect(refusal(403, 'pods "agent" is forbidden: violates PodSecurity "restricted:latest"')).toMatchObject({ reason: 'PodRejected' });
  expect(refusal(422, 'Pod "agent" is invalid')).toMatchObject({ reason: 'PodRejected' });
  expect(refusal(403, 'pods "agent" is forbidden: status unknown for quota: session-quota')).toBeNull();
  expect(refusal(500, 'etcd timeout')).toBeNull();
  expect(podRejection(new Error('socket hang up'), 'ns', SESSION)).toBeNull();
});

describe('a node counts as lost once its kubelet has been silent (Ready Unknown) for NODE_LOST_AFTER_MS', () => {
  const NOW = Date.parse('2026-12-04T12:00:00Z');
  const node = (ready?: { status: string; since?: Date | string; reason?: string; message?: string }): V1Node => ({
    metadata: { name: 'node-7' },
    status: ready
      ? { conditions: [{ type: 'Ready', status: ready.status, lastTransitionTime: ready.since as Date, reason: ready.reason, message: ready.message }] }
      : {},
  });
  const ago = (ms: number) => new Date(NOW - ms);

  test('Ready, or without a Ready condition (not yet reported), it is not lost', () => {
    expect(nodeOutage(node({ status: 'True', since: ago(3_600_000) }), NOW)).toBeNull();
    expect(nodeOutage(node(), NOW)).toBeNull();
  });

  test('silent for less than the bound (a kubelet restart, a short blip), it is not lost yet', () => {
    expect(nodeOutage(node({ status: 'Unknown', since: ago(NODE_LOST_AFTER_MS - 1) }), NOW)).toBeNull();
  });

  test('Ready False is a kubelet that still reports (under pressure, say) and still runs its pods: never lost, however long', () => {
    expect(nodeOutage(node({ status: 'False', since: ago(3_600_000), reason: 'KubeletNotReady', message: 'PLEG is not healthy' }), NOW)).toBeNull();
  });

  test('Unknown (its kubelet stopped reporting) for the bound and more, it is lost, and the message says since when and why', () => {
    const unknown = node({ status: 'Unknown', since: ago(NODE_LOST_AFTER_MS), reason: 'NodeStatusUnknown', message: 'Kubelet stopped posting node status.' });
    expect(nodeOutage(unknown, NOW)).toBe('its node node-7 has not been Ready for 30 s (Unknown, NodeStatusUnknown: Kubelet stopped posting node status.)');
    expect(nodeOutage(node({ status: 'Unknown', since: ago(95_000) }), NOW)).toBe('its node node-7 has not been Ready for 95 s (Unknown)');
    // As the apiserver's JSON has it, before the client turns it into a Date.
    expect(nodeOutage(node({ status: 'Unknown', since: '2026-12-04T11:58:00Z' }), NOW)).toMatch(/for 120 s/);
  });

  test('a transition time that is missing or not a time never makes a node lost', () => {
    expect(nodeOutage(node({ status: 'Unknown' }), NOW)).toBeNull();
    expect(nodeOutage(node({ status: 'Unknown', since: 'yesterday' }), NOW)).toBeNull();
  });
});

describe("an agent no node takes, because its volume's one node cannot: the reason names that node", () => {
  const NOW = Date.parse('2026-12-04T12:00:00Z');
  const pv = (...terms: V1NodeSelectorRequirement[][]): V1PersistentVolume => ({
    spec: { nodeAffinity: { required: { nodeSelectorTerms: terms.map((matchExpressions) => ({ matchExpressions })) } } },
  });
  const host = (operator: string, ...values: string[]) => ({ key: 'kubernetes.io/hostname', operator, values });

  test("a local volume's node affinity names its one node; any other affinity, or none, ties it to no node", () => {
    expect(onlyNodeOf(pv([host('In', 'node-7')]))).toBe('node-7');
    expect(onlyNodeOf(pv([host('In', 'node-7'), { key: 'topology.kubernetes.io/zone', operator: 'In', values: ['a'] }]))).toBe('node-7');
    expect(onlyNodeOf({ spec: {} })).toBeNull();
    expect(onlyNodeOf(pv([host('In', 'node-7', 'node-8')]))).toBeNull();
    expect(onlyNodeOf(pv([host('NotIn', 'node-7')]))).toBeNull();
    expect(onlyNodeOf(pv([host('In', 'node-7')], [host('In', 'node-8')]))).toBeNull();
    expect(onlyNodeOf(pv([{ key: 'topology.kubernetes.io/zone', operator: 'In', values: ['a'] }]))).toBeNull();
    expect(onlyNodeOf(pv([host('In', 'node-7'), host('In', 'node-8')]))).toBeNull();
  });

  test('the node gone, not Ready (silent or reporting), or cordoned is named with why; a node that could take it is no reason', () => {
    const node = (status?: string, extra: Partial<V1Node['spec']> = {}): V1Node => ({
      metadata: { name: 'node-7' },
      spec: extra,
      status: status
        ? {
            conditions: [
              {
                type: 'Ready',
                status,
                lastTransitionTime: new Date(NOW - 95_000),
                reason: 'NodeStatusUnknown',
                message: 'Kubelet stopped posting node status.',
              },
            ],
          }
        : {},
    });
    expect(volumeNodeTrouble(null, 'node-7', NOW)).toBe('node node-7 no longer exists');
    expect(volumeNodeTrouble(node('Unknown'), 'node-7', NOW)).toBe(
      'node node-7 has not been Ready for 95 s (Unknown, NodeStatusUnknown: Kubelet stopped posting node status.)',
    );
    expect(volumeNodeTrouble(node('False'), 'node-7', NOW)).toMatch(/^node node-7 has not been Ready for 95 s \(False, /);
    expect(volumeNodeTrouble(node(), 'node-7', NOW)).toBe('node node-7 has not been Ready (no Ready condition)');
    expect(volumeNodeTrouble(node('True', { unschedulable: true }), 'node-7', NOW)).toBe('node node-7 is cordoned (unschedulable)');
    expect(volumeNodeTrouble(node('True'), 'node-7', NOW)).toBeNull();
  });
});
