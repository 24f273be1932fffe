/** Recorded histories must replay against the current workflow code, with the worker's interceptors: no nondeterminism. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { WORKFLOW_INTERCEPTOR_MODULES } from '../../services/worker/tracing';

const DIR = path.join(__dirname, 'histories');
const files = fs.readdirSync(DIR).filter((f) => f.endsWith('.binpb'));
/**
 * The id each history ran under (record-histories.ts): the session workflow checks its own, so a
 * history replayed under another id takes another path. The first generation predates that check.
 */
const ids: Record<string, string> = JSON.parse(fs.readFileSync(path.join(DIR, 'workflow-ids.json'), 'utf8'));
const FIRST_GENERATION = ['cleanup.binpb', 'continued-as-new.binpb', 'failed-provisioning.binpb', 'lifecycle.binpb'];
const SCENARIOS = ['cleanup', 'continued-as-new', 'failed-provisioning', 'lifecycle', 'reported-agent'];
/**
 * One per recording since workflow ids were kept, with the scenarios it added: 2026-12-04 brought
 * end reasons and summaries; 2026-12-04-volumes, volume owners; 2026-12-04-activity, the workflow
 * recording activity in the store itself; 2026-12-05-local-steps, the quick steps as local activities;
 * 2026-12-05-proxy-sync, sessions whose volume the proxy fills (no sync step); 2026-12-06-claims-first, volume
 * owners that grant a waiting claim before they look at the volume; 2026-12-06-withdrawn-claims, a session
 * cancelled while its claim waits, which releases, and the owner that withdraws its claim.
 */
const GENERATIONS: Array<[string, string[]]> = [
  ['2026-12', []],
  ['2026-12-04', []],
  ['2026-12-04-volumes', ['volume']],
  ['2026-12-04-activity', []],
  ['2026-12-05-local-steps', []],
  ['2026-12-05-proxy-sync', ['proxy-sync']],
  ['2026-12-06-claims-first', []],
  ['2026-12-06-withdrawn-claims', ['cancelled-claim', 'withdrawn-claim']],
];

test('there are recorded histories for every workflow, each newer one with its workflow id', () => {
  const recorded = GENERATIONS.flatMap(([generation], i) => {
    const scenarios = [...SCENARIOS, ...GENERATIONS.slice(0, i + 1).flatMap(([, added]) => added)];
    return scenarios.map((s) => `${s}@${generation}.binpb`);
  });
  expect(files.sort()).toEqual([...FIRST_GENERATION, ...recorded].sort());
  expect(Object.keys(ids).sort()).toEqual(files.filter((f) => !FIRST_GENERATION.includes(f)).sort());
});

test('every recorded history replays without nondeterminism', async () => {
  const histories = files.map((f) => ({ workflowId: ids[f] ?? f, history: temporal.api.history.v1.History.decode(fs.readFileSync(path.join(DIR, f))) }));
  const results = [];
  for await (const result of Worker.runReplayHistories(
    { workflowsPath: require.resolve('../../workflows'), interceptors: { workflowModules: WORKFLOW_INTERCEPTOR_MODULES } },
    histories,
  )) {
    results.push(result);
  }
  expect(results.map((r) => [r.workflowId, r.error?.message ?? null])).toEqual(histories.map((h) => [h.workflowId, null]));
}, 120_000);
