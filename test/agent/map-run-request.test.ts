import type { RunRequest__Output } from '../../gen/proto/command_server/RunRequest';
import { type AgentPaths, type ClientPaths, mapRunRequest, serverStartupArgs } from '../../services/agent/run-request';

const LAPTOP: ClientPaths = { clientWorkspace: '/home/dev/proj', clientOutputBase: '/home/dev/.cache/bazel/_bazel_dev/0123abcd' };
const AGENT: AgentPaths = { workspaceDir: '/vol/ws', outputBase: '/vol/ob', env: { PATH: '/usr/bin:/bin', HOME: '/root', USER: 'agent' } };
/** The agent's MACHINE_ENV, right after the command name; it has no TMPDIR, so none is sent. */
const AGENT_ENV = ['--client_env=PATH=/usr/bin:/bin', '--client_env=HOME=/root'];

function request(args: string[], startupOptions: [string, string][] = []): RunRequest__Output {
  return {
    cookie: '',
    arg: args.map((a) => Buffer.from(a)),
    blockForLock: true,
    clientDescription: 'pid=16435',
    invocationPolicy: '',
    startupOptions: startupOptions.map(([option, source]) => ({ option: Buffer.from(option), source: Buffer.from(source) })),
  };
}

/**
 * The rc-file expansion every captured request carries. Captured from the real 4.2.3 client through
 * a recording relay, run as `env -i PATH=/home/dev/proj/tools:/usr/bin:/bin HOME=/home/dev
 * TMPDIR=/tmp USER=dev LANG=C.UTF-8 TERM=xterm-256color bazel --output_base=<LAPTOP's> …` in
 * /home/dev/proj, whose .bazelrc has `build:ci --override_repository=foo=/home/dev/proj/third_party/foo`
 * and whose user has `build --disk_cache=/home/dev/.cache/bazel-disk` in ~/.bazelrc.
 */
const RC = [
  '--binary_path=/usr/bin/bazel',
  '--rc_source=client',
  '--default_override=0:common=--isatty=0',
  '--default_override=0:common=--terminal_columns=80',
  '--rc_source=/etc/bazel/bazelrc',
  '--rc_source=/home/dev/proj/.bazelrc',
  '--rc_source=/home/dev/.bazelrc',
  '--default_override=1:build=--host_javabase=@local_jdk//:jdk',
  '--default_override=1:build=--sandbox_debug',
  '--default_override=2:build:ci=--keep_going',
  '--default_override=2:build:ci=--override_repository=foo=/home/dev/proj/third_party/foo',
  '--default_override=2:build=--nosandbox_debug',
  '--default_override=3:build=--disk_cache=/home/dev/.cache/bazel-disk',
];
const ENV = (pwd: string) => [
  `--client_env=PWD=${pwd}`,
  '--client_env=HOME=/home/dev',
  '--client_env=LANG=C.UTF-8',
  '--client_env=TMPDIR=/tmp',
  '--client_env=TERM=xterm-256color',
  '--client_env=USER=dev',
  '--client_env=SHLVL=0',
  '--client_env=PATH=/home/dev/proj/tools:/usr/bin:/bin',
];
const TIMES = (startup: number) => [`--startup_time=${startup}`, '--command_wait_time=0', '--extract_data_time=0'];
const STARTUP: [string, string][] = [
  ['--install_base=/usr/share/bazel', '/etc/bazel/bazelrc'],
  ['', ''], // the 4.2.3 client adds an empty StartupOption after each real one
  ['--trust_install_base', '/etc/bazel/bazelrc'],
  ['', ''],
  ['--output_base=/home/dev/.cache/bazel/_bazel_dev/0123abcd', ''],
  ['', ''],
];
const STARTUP_MAPPED: [string, string][] = [...STARTUP.slice(0, 4), ['--output_base=/vol/ob', ''], ['', '']];

/** What mapping does to the captured arguments; every other argument must come through as it was. */
const CHANGES = (pwd: string, agentPwd: string): Record<string, string | null> => ({
  '--rc_source=/home/dev/proj/.bazelrc': '--rc_source=/vol/ws/.bazelrc',
  '--default_override=2:build:ci=--override_repository=foo=/home/dev/proj/third_party/foo':
    '--default_override=2:build:ci=--override_repository=foo=/vol/ws/third_party/foo',
  [`--client_env=PWD=${pwd}`]: `--client_env=PWD=${agentPwd}`,
  [`--client_cwd=${pwd}`]: `--client_cwd=${agentPwd}`,
  '--client_env=HOME=/home/dev': null,
  '--client_env=TMPDIR=/tmp': null,
  '--client_env=PATH=/home/dev/proj/tools:/usr/bin:/bin': null,
});

describe('mapRunRequest on requests captured from the real 4.2.3 client', () => {
  const cases: { name: string; args: string[]; startup: [string, string][]; expectedStartup: [string, string][]; changes: Record<string, string | null> }[] = [
    {
      name: '`bazel build //:g` in the workspace root',
      args: ['build', ...TIMES(65), ...RC, ...ENV('/home/dev/proj'), '--client_cwd=/home/dev/proj', '//:g'],
      startup: STARTUP,
      expectedStartup: STARTUP_MAPPED,
      changes: CHANGES('/home/dev/proj', '/vol/ws'),
    },
    {
      name: '`bazel --bazelrc=… test --config=ci //...` in a subdirectory',
      args: ['test', ...TIMES(15), ...RC, ...ENV('/home/dev/proj/sub'), '--client_cwd=/home/dev/proj/sub', '--config=ci', '//...'],
      startup: [...STARTUP, ['--bazelrc=/home/dev/proj/.bazelrc', ''], ['', '']],
      expectedStartup: [...STARTUP_MAPPED, ['--bazelrc=/vol/ws/.bazelrc', ''], ['', '']],
      changes: CHANGES('/home/dev/proj/sub', '/vol/ws/sub'),
    },
    {
      name: '`bazel query //...` in a subdirectory',
      args: ['query', ...TIMES(13), ...RC, ...ENV('/home/dev/proj/sub'), '--client_cwd=/home/dev/proj/sub', '//...'],
      startup: STARTUP,
      expectedStartup: STARTUP_MAPPED,
      changes: CHANGES('/home/dev/proj/sub', '/vol/ws/sub'),
    },
  ];

  test.each(cases)('$name', ({ args, startup, expectedStartup, changes }) => {
    const mapped = mapRunRequest(request(args, startup), LAPTOP, AGENT);
    const expected = args.slice(1).flatMap((arg) => (arg in changes ? (changes[arg] === null ? [] : [changes[arg]!]) : [arg]));
    expect(mapped.arg.map(String)).toEqual([args[0], ...AGENT_ENV, ...expected]);
    expect(mapped.startupOptions.map(({ option, source }) => [String(option), String(source)])).toEqual(expectedStartup);
    expect(mapped).toMatchObject({ blockForLock: true, clientDescription: 'pid=16435', invocationPolicy: '' });
  });
});

describe('mapRunRequest path boundaries', () => {
  test.each([
    ['a whole path', '/home/dev/proj', '/vol/ws'],
    ['a path below it', '/home/dev/proj/pkg/in.txt', '/vol/ws/pkg/in.txt'],
    ['a sibling with the same prefix', '/home/dev/proj2/x', '/home/dev/proj2/x'],
    ['the path inside another path', '/x/home/dev/proj/y', '/x/home/dev/proj/y'],
    ['every entry of a path list', '--action_env=PYTHONPATH=/home/dev/proj/lib:/home/dev/proj/gen', '--action_env=PYTHONPATH=/vol/ws/lib:/vol/ws/gen'],
    [
      'the output base',
      '--experimental_execution_log_file=/home/dev/.cache/bazel/_bazel_dev/0123abcd/exec.log',
      '--experimental_execution_log_file=/vol/ob/exec.log',
    ],
    ['a label', '//home/dev/proj:t', '//home/dev/proj:t'],
    ['a variable that is not PATH', '--client_env=PATHEXT=/home/dev/proj', '--client_env=PATHEXT=/vol/ws'],
  ])('%s', (_, arg, expected) => {
    expect(mapRunRequest(request(['build', arg]), LAPTOP, AGENT).arg.map(String)).toEqual(['build', ...AGENT_ENV, expected]);
  });

  test('a workspace given with a trailing slash and no output base', () => {
    const mapped = mapRunRequest(request(['build', '--client_cwd=/home/dev/proj']), { clientWorkspace: '/home/dev/proj/' }, AGENT);
    expect(mapped.arg.map(String)).toEqual(['build', ...AGENT_ENV, '--client_cwd=/vol/ws']);
  });

  test('non-ASCII paths match byte for byte, and bytes that are not UTF-8 survive', () => {
    const notUtf8 = Buffer.from([0x2f, 0xff, 0xfe]);
    const zoe = request(['build', '--client_cwd=/home/zoë/proj/ü']);
    const mapped = mapRunRequest({ ...zoe, arg: [...zoe.arg, notUtf8] }, { clientWorkspace: '/home/zoë/proj' }, { ...AGENT, workspaceDir: '/vol/wö' });
    expect(String(mapped.arg.at(-2))).toBe('--client_cwd=/vol/wö/ü');
    expect(mapped.arg.at(-1)).toEqual(notUtf8);
  });
});

test('only the startup options that shape the server process reach the agent, in order', () => {
  const options: [string, string][] = [
    ['--output_base=/home/dev/.cache/ob', ''],
    ['--host_jvm_args=-Xmx2g', '/home/dev/proj/.bazelrc'],
    ['--server_javabase=/home/dev/.rbs/javabase', ''],
    ['--nowatchfs', ''],
    ['--bazelrc=/home/dev/other.bazelrc', ''],
    ['--host_jvm_args=-Dx=1', ''],
    ['--install_base=/home/dev/ib', '/etc/bazel/bazelrc'],
    ['--io_nice_level=3', ''],
    ['--nohost_jvm_argsish', ''],
  ];
  expect(serverStartupArgs(request(['build'], options).startupOptions)).toEqual([
    '--host_jvm_args=-Xmx2g',
    '--nowatchfs',
    '--host_jvm_args=-Dx=1',
    '--io_nice_level=3',
  ]);
});
