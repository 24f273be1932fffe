/**
 * WatchSession reads the store while nothing changes and asks the workflow only when the store
 * shows a change (and every 30 s all the same). Counted where it costs: the Temporal frontend's own
 * QueryWorkflow requests, from a Temporal server of this file's own.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { startTemporalDevServer, type TemporalDevServer } from '../../lib/local/temporal-dev-server';
import { freePort } from '../../lib/local/ports';
import { startStack, type TestStack } from '../harness/stack';
import { waitFor } from '../harness/wait';

let temporal: TemporalDevServer;
let metricsPort: number;
let stack: TestStack;

beforeAll(async () => {
  metricsPort = await freePort();
  temporal = await startTemporalDevServer({ logFile: path.join(os.tmpdir(), `rbs-watch-temporal-${process.pid}.log`), metricsPort });
  stack = await startStack({ RBS_TEMPORAL_ADDRESS: temporal.address, RBS_IDLE_TIMEOUT_MS: '1500' });
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  await temporal?.child.stop(0);
});

/** QueryWorkflow requests the Temporal frontend has served so far. */
async function queries(): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const line = text
    .split('\n')
    .find((l) => l.startsWith('service_requests{') && l.includes('operation="QueryWorkflow"') && l.includes('service_name="frontend"'));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

test('a watched session that does not change costs no Temporal query; its next phases are streamed as they come', async () => {
  const fay = await stack.client('fay');
  const workspace = stack.workspace();
  const session = await fay.getServer(workspace);
  await waitFor(async () => (await fay.describeSession(session.sessionId)).phase === 'SUSPENDED', 20_000, 'the idle session to be suspended');

  const phases: string[] = [];
  const watch = fay.watch({ sessionId: session.sessionId }, (p) => phases.push(p.phase));
  await waitFor(() => phases.includes('SUSPENDED'), 5_000, 'the watch to report SUSPENDED');
  await new Promise((r) => setTimeout(r, 2_000)); // the server reports its counters each second
  const before = await queries();
  await new Promise((r) => setTimeout(r, 8_000));
  const during = (await queries()) - before;
  // Per stream per minute while nothing changes, the aim is at most 2: none in 8 s.
  expect({ during }).toEqual({ during: 0 });

  const asked = Date.now();
  await fay.getServer(workspace); // resumes it
  await waitFor(() => phases.includes('READY'), 10_000, 'the watch to report READY');
  expect(Date.now() - asked).toBeLessThan(10_000);
  expect(phases).toEqual(['SUSPENDED', ...phases.slice(1, -1).filter((p) => p === 'RESUMING'), 'READY']);
  await watch.done;
  await fay.endSession(session.sessionId);
}, 60_000);
