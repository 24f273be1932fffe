import * as path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { homePaths } from '../../lib/config';
import { LocalBackend, defaultAgentCommand } from '../../lib/compute/local-backend';
import type { Child } from '../../lib/local/child';
import { CertificateAuthority } from '../../lib/pki/ca';
import { OrchestratorClient } from '../../lib/grpc/orchestrator-client';
import { runOrchestrator } from '../../services/orchestrator/orchestrator';
import { cleanupScheduleId } from '../../services/worker/cleanup-schedule';
import { testConfig } from '../harness/stack';
import { startWorkerProcess } from '../harness/worker-process';
import * as fs from 'node:fs';
import * as os from 'node:os';

test('a worker SIGKILLed in the middle of provisioning: after a restart the session reaches READY, nothing created twice', async () => {
  const config = testConfig();
  const startWorker = () => startWorkerProcess(config);
  const ca = await CertificateAuthority.loadOrCreate(homePaths(config.home).pki);
  const orchestrator = await runOrchestrator(config);
  const client = new OrchestratorClient(orchestrator.address, { caCertPem: ca.certPem, ...(await ca.issue({ kind: 'user', user: 'hank', operator: false })) });
  const backend = new LocalBackend({ home: config.home, agentCommand: defaultAgentCommand() });
  // A workspace big enough that the initial sync is still running when the worker dies.
  const workspace = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-ws-')));
  for (let i = 0; i < 2000; i++) fs.writeFileSync(path.join(workspace, `f${i}.txt`), 'x'.repeat(20_000));

  let worker: Child = startWorker();
  try {
    const killed = new Promise<string>((resolve) => {
      const watch = client.watch({ workspace }, (p) => {
        if (['PROVISIONING_AGENT', 'PROVISIONING_AGENT_READY', 'PROVISIONING_SYNC'].includes(p.phase)) {
          process.kill(worker.process.pid!, 'SIGKILL');
          watch.cancel();
          resolve(p.phase);
        }
      });
    });
    const session = client.getServer(workspace);
    console.log(`worker killed during ${await killed}`);
    await new Promise((r) => worker.process.once('exit', r));
    worker = startWorker();

    const ready = await session;
    expect(ready.phase).toBe('READY');
    expect(await backend.listAgents()).toHaveLength(1);
    expect((await backend.listNamespaces()).map((n) => n.namespace)).toEqual([ready.namespace]);
    expect(fs.readdirSync(path.join(config.home, 'volumes', ready.volume, 'workspace'))).toHaveLength(2000);
    await client.endSession(ready.sessionId);
    expect(await backend.listAgents()).toHaveLength(0);
  } finally {
    client.close();
    await orchestrator.stop();
    await worker.stop();
    for (const agent of await backend.listAgents()) await backend.killAgent(agent);
    const connection = await Connection.connect({ address: config.temporal.address });
    await new Client({ connection }).schedule
      .getHandle(cleanupScheduleId(config.temporal.taskQueue))
      .delete()
      .catch(() => undefined);
    await connection.close();
    fs.rmSync(workspace, { recursive: true, force: true });
    fs.rmSync(config.home, { recursive: true, force: true });
  }
});
