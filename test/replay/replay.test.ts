/** Recorded histories must replay against the current workflow code: no nondeterminism. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';

const DIR = path.join(__dirname, 'histories');
const files = fs.readdirSync(DIR).filter((f) => f.endsWith('.binpb'));

test('there are recorded histories for every workflow', () => {
  expect(files.sort()).toEqual(['cleanup.binpb', 'continued-as-new.binpb', 'failed-provisioning.binpb', 'lifecycle.binpb']);
});

test('every recorded history replays without nondeterminism', async () => {
  const histories = files.map((f) => ({ workflowId: f, history: temporal.api.history.v1.History.decode(fs.readFileSync(path.join(DIR, f))) }));
  const results = [];
  for await (const result of Worker.runReplayHistories({ workflowsPath: require.resolve('../../workflows') }, histories)) {
    results.push(result);
  }
  expect(results.map((r) => [r.workflowId, r.error?.message ?? null])).toEqual(files.map((f) => [f, null]));
}, 120_000);
