/**
 * The chaos suite: faults at every point of the whole command path, in every phase of a command,
 * against real parts (the stock client, the proxy, the orchestrator and worker on Temporal, agents
 * and their Bazel servers). Cases come from a seed, printed, so that a failure can be replayed:
 *   RBS_CHAOS_SEED=<seed> RBS_CHAOS_CASES=<count> npx jest test/chaos
 * or one case: RBS_CHAOS_ONLY=agent-kill@run npx jest test/chaos
 * Then the control plane's own cases (control-plane.ts), e.g. RBS_CHAOS_ONLY=worker-kill@provision.
 */
import { useStack } from '../harness/stack';
import { allCases, caseName, chooseCases } from './cases';
import { CHAOS_KEEPALIVE_MS, type ChaosRig, startChaosRig } from './rig';
import { describeControlPlaneChaos } from './control-plane';
import { type CaseOutcome, runCase } from './run-case';

const SEED = Number(process.env.RBS_CHAOS_SEED ?? 20261203);
const COUNT = Number(process.env.RBS_CHAOS_CASES ?? 30);
/** RBS_CHAOS_ONLY=point@phase,…: just those cases (a failure's, to replay it). */
const ONLY = process.env.RBS_CHAOS_ONLY?.split(',').map((name) => name.trim());
const CASES = ONLY ? allCases().filter((c) => ONLY.includes(caseName(c))) : chooseCases(SEED, COUNT);

jest.setTimeout(240_000);

if (CASES.length > 0) {
  describe('the command path', () => {
    // The stack's agents notice a silent proxy as quickly as the rig's proxies notice a silent agent.
    const stack = useStack({ RBS_KEEPALIVE_MS: String(CHAOS_KEEPALIVE_MS) });
    let rig: ChaosRig;
    const outcomes: CaseOutcome[] = [];

    beforeAll(async () => {
      rig = await startChaosRig(stack(), 'chaos');
      const first = await rig.ws.bazel(['build', ...rig.ws.buildOptions, '//:gen']);
      if (first.code !== 0) throw new Error(`the first build failed: ${first.stderr}`);
    });
    afterAll(() => {
      console.log(
        [
          `chaos seed ${SEED}, ${CASES.length} cases:`,
          ...outcomes.map((o) => `  ${o.name.padEnd(30)} exit ${String(o.code).padStart(2)} after ${o.endedMs} ms; next build ${o.nextBuildMs} ms`),
        ].join('\n'),
      );
      rig?.close();
    });

    test.each(CASES.map((c, i) => [i + 1, caseName(c), c] as const))(`seed ${SEED} case %i: %s`, async (i, _name, chaosCase) => {
      outcomes.push(await runCase(rig, chaosCase, `case-${SEED}-${i}`));
    });
  });
}

// After the command path's cases, never beside them: both are timing-sensitive on two cores.
describeControlPlaneChaos(ONLY);
