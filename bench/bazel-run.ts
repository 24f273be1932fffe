/**
 * `bazel run` of a hello-world (the test workspace's cc_binary) through RBS, which runs it on this
 * machine from the fetched program, against plain local Bazel; both warm. Real Bazel, the whole
 * stack on this machine. Alone: `node dist/bench/bazel-run.js`.
 */
import * as os from 'node:os';
import type { BazelWorkspace } from '../test/data-path/fixture';
import { percentile, report, type Row } from './stats';
import { withBazelStack } from './bazel-stack';

const ROUNDS = 7;

/** ROUNDS timings of `args` through RBS and locally, after one of each to warm up; interleaved, so load hits both alike. */
async function rounds(ws: BazelWorkspace, args: string[], expected: (stdout: string) => boolean) {
  const viaRbs: number[] = [];
  const local: number[] = [];
  for (let i = 0; i <= ROUNDS; i++) {
    for (const [times, result] of [
      [viaRbs, await ws.bazel(args)],
      [local, await ws.local(args)],
    ] as const) {
      if (result.code !== 0 || !expected(result.stdout)) throw new Error(`bazel ${args.join(' ')} failed (${result.code}): ${result.stdout}${result.stderr}`);
      if (i > 0) times.push(result.ms);
    }
  }
  return { viaRbs, local };
}

async function runFigures(): Promise<Row[]> {
  return withBazelStack(async (ws) => {
    const target = [...ws.buildOptions, '//main:hello-world'];
    const run = await rounds(ws, ['run', ...target, '--', 'bench'], (stdout) => stdout === 'Hello bench\n');
    // The same target's no-op build: what any command pays for the trip, so what is run's own shows.
    const build = await rounds(ws, ['build', ...target], () => true);
    const median = (xs: number[]) => percentile(xs, 50);
    return [
      { metric: 'bazel run hello-world, warm: RBS (median)', value: median(run.viaRbs), unit: 'ms' },
      { metric: 'bazel run hello-world, warm: local Bazel (median)', value: median(run.local), unit: 'ms' },
      { metric: 'bazel run ratio RBS / local', value: median(run.viaRbs) / median(run.local), unit: 'x', aim: '<= 1.2' },
      { metric: 'no-op build of it: RBS (median)', value: median(build.viaRbs), unit: 'ms' },
      { metric: 'no-op build of it: local Bazel (median)', value: median(build.local), unit: 'ms' },
      { metric: 'no-op build ratio RBS / local', value: median(build.viaRbs) / median(build.local), unit: 'x' },
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
