/**
 * Cold sessions on the real node (test/harness/kube-node.ts), the agent image present: SESSIONS users one
 * after another ask for a session, and each is timed from GetServer to READY, with the time each provisioning
 * step took (the session's timeline) and the agent pod's own create-to-Ready as the kubelet reported it. READY
 * comes before Bazel's first JVM start, which the first command pays. Then the sessions end and what is left
 * is counted.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { homePaths } from '../lib/config';
import { OrchestratorClient } from '../lib/grpc/orchestrator-client';
import type { Child } from '../lib/local/child';
import { CertificateAuthority } from '../lib/pki/ca';
import { AGENT_TEST_IMAGE } from '../test/harness/kube-node';
import { waitFor } from '../test/harness/wait';
import { startKubeBackendEnvironment } from '../test/kubernetes/backend-fixture';
import { startRbs, workspaceOf } from './kubernetes';
import { percentile, report, type Row } from './stats';

const SESSIONS = 5;
const READY_TIMEOUT_MS = 120_000;

export async function benchRealNode(): Promise<void> {
  const kube = await startKubeBackendEnvironment({ nodes: 1 }, undefined, { realNode: true });
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-bench-node-'));
  const logs = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-bench-node-logs-'));
  const children: Child[] = [];
  const clients: OrchestratorClient[] = [];
  try {
    const address = await startRbs(home, logs, kube.workerKubeconfigPath, children, { RBS_KUBE_AGENT_IMAGE: AGENT_TEST_IMAGE });
    const ca = await CertificateAuthority.loadOrCreate(homePaths(home).pki);
    const readyMs: number[] = [];
    const podReadyMs: number[] = [];
    const steps = new Map<string, number[]>();
    for (let i = 0; i < SESSIONS; i++) {
      const user = `cold${i}`;
      const client = new OrchestratorClient(address, { caCertPem: ca.certPem, ...(await ca.issue({ kind: 'user', user, operator: false })) });
      clients.push(client);
      const start = performance.now();
      const session = await client.getServer(workspaceOf(user), { timeoutMs: READY_TIMEOUT_MS });
      if (session.phase !== 'READY') throw new Error(`session ${session.sessionId} is ${session.phase}: ${session.failureReason}`);
      readyMs.push(performance.now() - start);
      const timeline = await client.describeSessionTimeline(session.sessionId);
      for (const phase of timeline.phases) {
        if (phase.phase === 'READY') continue;
        steps.set(phase.phase, [...(steps.get(phase.phase) ?? []), Number(phase.durationMs)]);
      }
      const pod = await kube.admin.core.readNamespacedPod({ name: 'agent', namespace: session.namespace });
      const ready = pod.status?.conditions?.find((c) => c.type === 'Ready' && c.status === 'True')?.lastTransitionTime;
      if (ready && pod.metadata?.creationTimestamp) podReadyMs.push(new Date(ready).getTime() - new Date(pod.metadata.creationTimestamp).getTime());
      await client.endSession(session.sessionId);
    }
    const backend = kube.backend();
    await waitFor(async () => (await backend.listNamespaces()).length === 0, READY_TIMEOUT_MS, 'the sessions to go');
    const left = (await backend.listNamespaces()).length + (await backend.listAgents()).length;
    const p50 = (values: number[]) => (values.length ? percentile(values, 50) : NaN);
    report(
      'real-node',
      [
        { metric: `cold session to READY p50 (${SESSIONS} sessions, one at a time)`, value: p50(readyMs), unit: 'ms', aim: '<= 5000' },
        { metric: 'cold session to READY max', value: Math.max(...readyMs), unit: 'ms' },
        { metric: "  agent pod create -> Ready p50 (the kubelet's, 1 s resolution)", value: p50(podReadyMs), unit: 'ms' },
        ...[...steps].map(([phase, ms]): Row => ({ metric: `  step ${phase} p50`, value: p50(ms), unit: 'ms' })),
        { metric: 'left after end (namespaces + agent pods)', value: left, unit: 'count', aim: '0' },
      ],
      { sessions: SESSIONS, cpus: os.cpus().length, readyMs: readyMs.map(Math.round), podReadyMs, logs },
    );
  } finally {
    for (const client of clients) client.close();
    for (const child of children.reverse()) await child.stop();
    await kube.stop();
    fs.rmSync(home, { recursive: true, force: true });
  }
}
