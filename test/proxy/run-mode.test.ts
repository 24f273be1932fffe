import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { RunTarget__Output } from '../../lib/run-target';
import { bazelRunOf } from '../../services/proxy/bazel-run';
import { runPlace } from '../../services/proxy/run-mode';

const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-run-mode-'));
afterAll(() => fs.rmSync(workspace, { recursive: true, force: true }));

const target = (over: Partial<RunTarget__Output> = {}): RunTarget__Output => ({
  executable: 'execroot/__main__/bazel-out/k8-fastbuild/bin/x',
  args: [],
  remoteOnlyReason: '',
  platform: process.platform,
  arch: process.arch,
  remoteRunId: 'id',
  outputBase: '/agent/ob',
  workspace: '/agent/ws',
  files: [],
  ...over,
});
const settings = (run: string | undefined) =>
  run ? fs.writeFileSync(path.join(workspace, '.rbs.json'), JSON.stringify({ run })) : fs.rmSync(path.join(workspace, '.rbs.json'), { force: true });
const env = (value: string) => [`--client_env=RBS_RUN=${value}`];

test.each([
  ['auto, same machine kind: here', undefined, [], {}, { where: 'local' }],
  [
    'auto, another architecture: on the agent, saying why',
    undefined,
    [],
    { arch: 'riscv64' },
    { where: 'remote', why: expect.stringContaining('/riscv64, this machine') },
  ],
  ['auto, a test target: on the agent', undefined, [], { remoteOnlyReason: '//x:t is a test' }, { where: 'remote', why: '//x:t is a test' }],
  ['.rbs.json remote', 'remote', [], {}, { where: 'remote', why: expect.any(String) }],
  ['RBS_RUN=local wins over .rbs.json remote (the last one given counts)', 'remote', [...env('remote'), ...env('local')], {}, { where: 'local' }],
])('%s', (_what, run, args, over, place) => {
  settings(run);
  expect(runPlace(target(over), args, workspace)).toEqual(place);
});

test.each([
  [
    'local, but only the agent can',
    env('local'),
    { remoteOnlyReason: '--run_under wraps the program' },
    'cannot run this target on this machine: --run_under wraps the program. Run it on the agent with RBS_RUN=remote',
  ],
  ['a bad RBS_RUN', env('elsewhere'), {}, 'RBS_RUN must be one of auto, local, remote, not "elsewhere"'],
])('refused: %s', (_what, args, over, message) => {
  settings(undefined);
  expect(() => runPlace(target(over), args, workspace)).toThrow(message);
});

test.each(['build', 'info', 'test'])('a compromised agent naming a program to run for `bazel %s` is refused: only `bazel run` runs one', (command) => {
  const delivered: unknown[] = [];
  const run = bazelRunOf({ arg: [Buffer.from(command)] } as never, (r) => delivered.push(r), { workspace, outputBase: '/laptop/ob', log: () => undefined });
  expect(() => run.onRunTarget(target())).toThrow(`a program to run, for \`bazel ${command}\`, which runs none`);
  expect(delivered).toEqual([]);
});
