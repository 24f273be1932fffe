/**
 * The soak: builds with random faults, drawn from a seed (printed; RBS_SOAK_SEED replays it), on
 * the chaos suite's rig (test/chaos). Each case is two builds: the one the fault strikes and the
 * next one, which must succeed by itself. Reports hangs, wrong results and leftovers, and the time
 * from a fault to the next successful build; for an agent crash, also without the Bazel server's
 * JVM start (measured on its own here, side by side).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { caseName, chooseCases } from '../test/chaos/cases';
import { CHAOS_KEEPALIVE_MS, startChaosRig } from '../test/chaos/rig';
import { type CaseOutcome, runCase } from '../test/chaos/run-case';
import { withStack } from './bazel-stack';
import { percentile, report } from './stats';

const BUILDS = Number(process.env.RBS_SOAK_BUILDS ?? 200);

/** What a failed case broke, from its message (test/chaos/run-case.ts). */
function classify(message: string): 'hang' | 'wrong result' | 'leftover' | 'other' {
  if (/hung|took more than/.test(message)) return 'hang';
  if (/holds|differs/.test(message)) return 'wrong result';
  if (/left behind|still stopped|agents, not 1|Bazel servers, not 1/.test(message)) return 'leftover';
  return 'other';
}

/** Milliseconds for a new Bazel server to start and answer (`bazel info release` on a fresh output base). */
function jvmStartMs(): number {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-soak-jvm-'));
  try {
    fs.writeFileSync(path.join(root, 'WORKSPACE'), '');
    const started = performance.now();
    execFileSync('bazel', [`--output_base=${path.join(root, 'ob')}`, 'info', 'release'], { cwd: root, stdio: 'ignore' });
    const ms = performance.now() - started;
    execFileSync('bazel', [`--output_base=${path.join(root, 'ob')}`, 'shutdown'], { cwd: root, stdio: 'ignore' });
    return ms;
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

export async function benchSoak(): Promise<void> {
  const seed = Number(process.env.RBS_SOAK_SEED ?? Date.now() % 1_000_000_007);
  const cases = chooseCases(seed, Math.ceil(BUILDS / 2));
  console.log(`soak: seed ${seed}, ${cases.length} cases (${cases.length * 2} builds)`);
  const { outcomes, failures } = await withStack(
    async (stack) => {
      const rig = await startChaosRig(stack, 'soak');
      try {
        const first = await rig.ws.bazel(['build', ...rig.ws.buildOptions, '//:gen']);
        if (first.code !== 0) throw new Error(`the first build failed: ${first.stderr}`);
        const outcomes: CaseOutcome[] = [];
        const failures: { name: string; kind: string; message: string }[] = [];
        for (const [i, chaosCase] of cases.entries()) {
          try {
            outcomes.push(await runCase(rig, chaosCase, `soak-${seed}-${i}`));
          } catch (err) {
            const message = (err as Error).message;
            failures.push({ name: caseName(chaosCase), kind: classify(message), message: message.slice(0, 2000) });
            console.log(`  case ${i + 1} ${caseName(chaosCase)} FAILED: ${message.split('\n')[0]}`);
          }
        }
        return { outcomes, failures };
      } finally {
        rig.close();
      }
    },
    { RBS_KEEPALIVE_MS: String(CHAOS_KEEPALIVE_MS) },
  );
  const jvm = [jvmStartMs(), jvmStartMs(), jvmStartMs()];
  const jvmMs = percentile(jvm, 50);
  const recovery = outcomes.map((o) => o.recoveryMs);
  const crashes = outcomes.filter((o) => o.name.startsWith('agent-kill@')).map((o) => o.recoveryMs);
  const interrupts = outcomes.filter((o) => o.name.startsWith('interrupt@')).map((o) => o.endedMs);
  const count = (kind: string) => failures.filter((f) => f.kind === kind).length;
  report(
    'soak',
    [
      { metric: 'builds', value: cases.length * 2, unit: 'count' },
      { metric: 'hangs', value: count('hang'), unit: 'count', aim: '0' },
      { metric: 'wrong results', value: count('wrong result'), unit: 'count', aim: '0' },
      { metric: 'leftover processes', value: count('leftover'), unit: 'count', aim: '0' },
      { metric: 'other failed cases', value: count('other'), unit: 'count', aim: '0' },
      { metric: 'fault → next successful build p50', value: percentile(recovery, 50), unit: 'ms' },
      { metric: 'fault → next successful build p99', value: percentile(recovery, 99), unit: 'ms' },
      { metric: 'agent crash → next successful build p99', value: percentile(crashes, 99), unit: 'ms' },
      { metric: 'the same, less a Bazel server start (median of 3)', value: percentile(crashes, 99) - jvmMs, unit: 'ms', aim: '≤ 5000' },
      { metric: 'Ctrl-C → client exit, max', value: Math.max(...interrupts), unit: 'ms', aim: '≤ 2000' },
    ],
    { seed, jvmStartMs: jvm, outcomes, failures },
  );
}
