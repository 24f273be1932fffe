/** What the agent makes of its Bazel server's exec requests (shaped as Bazel 4.2.3 sends them). */
import { describeRun } from '../../services/agent/run-target';

const OB = '/vol/output_base';
const BIN = `${OB}/execroot/__main__/bazel-out/k8-fastbuild/bin`;
const exec = (argv: string[], env: Record<string, string> = {}) => ({
  workingDirectory: Buffer.from(`${BIN}/run/echo.runfiles/__main__`),
  argv: argv.map((arg) => Buffer.from(arg)),
  environmentVariable: Object.entries({ BUILD_WORKSPACE_DIRECTORY: '/vol/workspace', ...env }).map(([name, value]) => ({
    name: Buffer.from(name),
    value: Buffer.from(value),
  })),
  environmentVariableToClear: [],
  shouldExec: false,
});
const describe = (argv: string[], env?: Record<string, string>) => describeRun(exec(argv, env), OB, '/vol/workspace');

test('a plain program: relative to the output base, with its arguments as Bazel quoted them', () => {
  const target = describe(['/bin/bash', '-c', `${BIN}/run/echo a 'b c' 'it'\\''s'`]);
  expect(target).toMatchObject({
    executable: 'execroot/__main__/bazel-out/k8-fastbuild/bin/run/echo',
    remoteOnlyReason: '',
    outputBase: OB,
    workspace: '/vol/workspace',
  });
  expect(target.args!.map(String)).toEqual(['a', 'b c', "it's"]);
});

test.each([
  ['--run_under', ['/bin/bash', '-c', `/bin/bash -c '/usr/bin/env ${BIN}/run/echo y'`], {}, '--run_under'],
  ['a test target', ['/bin/bash', '-c', 'external/bazel_tools/tools/test/test-setup.sh ./t'], { TEST_TARGET: '//:t' }, '//:t is a test'],
  ['a program outside the output base', ['/bin/bash', '-c', '/usr/bin/id'], {}, 'is not under the output base'],
  ['no shell command line', ['/usr/bin/id'], {}, 'not a shell command line'],
  ['a command Bazel would not write', ['/bin/bash', '-c', `${BIN}/run/echo; id`], {}, 'cannot be read back'],
])('only the agent runs %s', (_what, argv, env, reason) => {
  expect(describe(argv, env)).toMatchObject({ executable: '', remoteOnlyReason: expect.stringContaining(reason) });
});
