import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PathFlagRefused, agentBuildEventFile, mapPathFlags, requestedBuildEventFiles } from '../../lib/bazel/path-flags';

const PLACES = {
  client: { workspace: '/home/dev/proj', outputBase: '/home/dev/.cache/bazel/_bazel_dev/0123' },
  agent: { volumeDir: '/vol/v1', commandDir: '/vol/v1/command-files/c1' },
};
const bytes = (args: string[]) => args.map((a) => Buffer.from(a));
const CLIENT = ['--binary_path=/usr/bin/bazel', '--rc_source=/etc/bazel/bazelrc', '--rc_source=/home/dev/.bazelrc', '--client_cwd=/home/dev/proj/lib'];

function mapped(args: string[], startup: string[] = [], command = 'build') {
  const result = mapPathFlags(
    bytes([command, ...CLIENT, ...args]),
    startup.map((option) => ({ option: Buffer.from(option), source: Buffer.from('/home/dev/.bazelrc') })),
    PLACES,
  );
  return { ...result, args: result.args.slice(1 + CLIENT.length).map(String), startup: result.startupOptions.map((o) => String(o.option)) };
}

function refusal(args: string[], startup: string[] = [], command = 'build'): string {
  try {
    mapped(args, startup, command);
  } catch (err) {
    expect(err).toBeInstanceOf(PathFlagRefused);
    return (err as Error).message;
  }
  throw new Error(`${args.join(' ')} was not refused`);
}

describe('mapPathFlags', () => {
  it('gives each cache path a directory of its own on the volume, from the command line or an rc file, in either form', () => {
    const { args, pairs } = mapped([
      '--disk_cache=/home/dev/.cache/disk',
      '--default_override=3:build=--repository_cache',
      '--default_override=3:build=/srv/repo-cache',
      '--disk_cache=',
      '//:all',
    ]);
    expect(args[0]).toMatch(/^--disk_cache=\/vol\/v1\/flag-dirs\/disk_cache-[0-9a-f]{16}$/);
    expect(args[1]).toBe('--default_override=3:build=--repository_cache');
    expect(args[2]).toMatch(/^--default_override=3:build=\/vol\/v1\/flag-dirs\/repository_cache-[0-9a-f]{16}$/);
    expect(args.slice(3)).toEqual(['--disk_cache=', '//:all']);
    expect(pairs).toHaveLength(2);
    expect(pairs).toEqual(
      expect.arrayContaining([
        [args[0].slice('--disk_cache='.length), '/home/dev/.cache/disk'],
        [args[2].slice('--default_override=3:build='.length), '/srv/repo-cache'],
      ]),
    );
    // The same laptop cache gets the same directory every time; another gets another.
    expect(mapped(['--disk_cache=/home/dev/.cache/disk']).args[0]).toBe(args[0]);
    expect(mapped(['--disk_cache=/elsewhere']).args[0]).not.toBe(args[0]);
  });

  it('gives every build event file occurrence a path of its own and knows where the developer wants it (relative to their cwd)', () => {
    const result = mapped([
      '--default_override=3:build=--build_event_json_file=/tmp/from-rc.json',
      '--build_event_text_file',
      'out/bep.txt',
      '--build_event_json_file=bep.json',
    ]);
    expect(result.args).toEqual([
      '--default_override=3:build=--build_event_json_file=/vol/v1/command-files/c1/build_event_json_file-0',
      '--build_event_text_file',
      '/vol/v1/command-files/c1/build_event_text_file-0',
      '--build_event_json_file=/vol/v1/command-files/c1/build_event_json_file-1',
    ]);
    const at = (id: string) => `/vol/v1/command-files/c1/${id}`;
    expect(result.buildEventFiles).toEqual([
      { id: 'build_event_json_file-0', flag: 'build_event_json_file', laptopPath: '/tmp/from-rc.json', agentPath: at('build_event_json_file-0') },
      { id: 'build_event_text_file-0', flag: 'build_event_text_file', laptopPath: '/home/dev/proj/lib/out/bep.txt', agentPath: at('build_event_text_file-0') },
      { id: 'build_event_json_file-1', flag: 'build_event_json_file', laptopPath: '/home/dev/proj/lib/bep.json', agentPath: at('build_event_json_file-1') },
    ]);
    expect(requestedBuildEventFiles(bytes(['build', ...CLIENT, '--build_event_json_file=/tmp/bep.json']), PLACES.client)).toEqual([
      { id: 'build_event_json_file-0', flag: 'build_event_json_file', laptopPath: '/tmp/bep.json' },
    ]);
  });

  it('tells another part of the agent which build event file Bazel wrote', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'path-flags-'));
    try {
      const result = mapPathFlags(bytes(['build', '--build_event_json_file=/tmp/a.json', '--build_event_json_file=/tmp/b.json']), [], {
        client: PLACES.client,
        agent: { volumeDir: dir, commandDir: dir },
      });
      expect(agentBuildEventFile(result, 'build_event_json_file')).toBeUndefined();
      fs.writeFileSync(path.join(dir, 'build_event_json_file-1'), '{}');
      expect(agentBuildEventFile(result, 'build_event_json_file')).toBe(path.join(dir, 'build_event_json_file-1'));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses only what can apply to the command: rc groups of other commands and unused configs are mapped, not refused', () => {
    const unused = ['--default_override=2:build:prof=--profile=/tmp/prof.gz', '--default_override=2:query=--distdir=/srv/dist'];
    expect(mapped(unused).args).toEqual(unused);
    expect(refusal([...unused, '--config=prof'])).toMatch(/--profile/);
    expect(refusal(['--default_override=2:build=--distdir=/srv/dist'], [], 'test')).toMatch(/--distdir/); // test inherits build
    expect(mapped(['--default_override=2:build=--distdir=/srv/dist'], [], 'query').args).toEqual(['--default_override=2:build=--distdir=/srv/dist']);
    expect(refusal(['--default_override=2:common=--distdir=/srv/dist'])).toMatch(/--distdir/);
    expect(refusal(['--default_override=2:test=--distdir=/srv/dist'], [], 'some_new_command')).toMatch(/--distdir/); // unknown: loud
  });

  it('refuses output files it cannot bring back, naming the flag', () => {
    expect(refusal(['--build_event_binary_file=/tmp/bep.bin'])).toMatch(/--build_event_binary_file: .*\/tmp\/bep.bin/);
    expect(refusal(['--profile', '/tmp/prof.gz'])).toMatch(/--profile/);
    expect(refusal(['--default_override=2:build=--execution_log_json_file=log.json'])).toMatch(/--execution_log_json_file/);
    expect(refusal(['--execution_log_binary_file=/home/dev/proj/log.bin'])).toMatch(/--execution_log_binary_file/);
  });

  it('passes laptop inputs inside the workspace and refuses them outside', () => {
    expect(mapped(['--override_repository=foo=/home/dev/proj/third_party/foo', '--distdir=/home/dev/proj/dist', '--package_path=%workspace%']).pairs).toEqual(
      [],
    );
    expect(refusal(['--override_repository=rules_cc=/opt/stubs/rules_cc'])).toMatch(/--override_repository: \/opt\/stubs\/rules_cc is outside the workspace/);
    expect(refusal(['--distdir', '/srv/dist'])).toMatch(/--distdir/);
    expect(refusal(['--package_path=%workspace%:/srv/pkgs'])).toMatch(/--package_path: \/srv\/pkgs/);
    expect(refusal(['--distdir=../../../srv'])).toMatch(/--distdir/);
  });

  it('refuses an unknown flag with an absolute laptop path outside the workspace, and passes the ones it knows', () => {
    expect(refusal(['--workspace_status_command=/home/dev/bin/status.sh'])).toMatch(/--workspace_status_command/);
    expect(refusal(['--some_future_flag=/srv/x'])).toMatch(/--some_future_flag: \/srv\/x is outside the workspace/);
    expect(refusal([], ['--some_startup_flag=/srv/x'])).toMatch(/--some_startup_flag/);
    const passed = ['--sandbox_base=/dev/shm', '--copt=-I/usr/include', '--action_env=PATH=/usr/bin', '--some_flag=/home/dev/proj/x', '--', '/not/a/flag'];
    expect(mapped(passed).args).toEqual(passed);
    const startup = ['--output_user_root=/home/dev/.cache/bazel', '--install_base=/usr/share/bazel', '--host_jvm_args=-Xmx1g', ''];
    expect(mapped([], startup).startup).toEqual(startup);
  });
});
