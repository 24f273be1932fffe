/**
 * `bazel run` of a hello-world (the test workspace's cc_binary) through RBS, which runs it on this
 * machine from the fetched program, against plain local Bazel; both warm. Real Bazel, the whole
 * stack on this machine. Alone: `node dist/bench/bazel-run.js`.
 */
import * as os from 'node:os';
import { percentile, report, type Row } from './stats';
import { withRbsWorkspace } from './rbs-workspace';

const ROUNDS = 7;

async function runFigures(): Promise<Row[]> {
  return withRbsWorkspace(async (ws) => {
    const run = ['run', ...ws.buildOptions, '//main:hello-world', '--', 'bench'];
    const viaRbs: number[] = [];
    const local: number[] = [];
    // The first of each warms its server and caches; then interleaved, so load hits both alike.
    for (let i = 0; i <= ROUNDS; i++) {
      for (const [times, result] of [[viaRbs, await ws.bazel(run)], [local, await ws.local(run)]] as const) {
        if (result.code !== 0 || result.stdout !== 'Hello bench\n') throw new Error(`bazel run failed (${result.code}): ${result.stdout}${result.stderr}`);
        if (i > 0) times.push(result.ms);
      }
    }
    const median = (xs: number[]) => percentile(xs, 50);
    return [
      { metric: 'bazel run hello-world, warm: RBS (median)', value: median(viaRbs), unit: 'ms' },
      { metric: 'bazel run hello-world, warm: local Bazel (median)', value: median(local), unit: 'ms' },
      { metric: 'bazel run ratio RBS / local', value: median(viaRbs) / median(local), unit: 'x', aim: '<= 1.2' },
    ];
  });
}

export async function benchBazelRun(): Promise<void> {
  report('bazel-run', await runFigures(), { rounds: ROUNDS, cpus: os.cpus().length });
}

if (require.main === module) {
  benchBazelRun().then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
