/**
 * How the agent and the proxy read a request for outputs: which --symlink_prefix and
 * --build_event_json_file Bazel will use (command line over rc lines, command inheritance), and
 * which files a build event file names (named sets nest).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { linkNamesOf, symlinkPrefixOf } from '../../lib/bazel/convenience-links';
import { BUILDING_COMMANDS, effectiveFlag, effectiveOption } from '../../lib/bazel/options';
import { outputsInBuildEvents } from '../../services/agent/build-events';

test.each<[string, string[], ReturnType<typeof symlinkPrefixOf>]>([
  ['the default', ['build', '//:x'], { prefix: 'bazel-' }],
  ['the command line', ['build', '--symlink_prefix=out-', '//:x'], { prefix: 'out-' }],
  ['the command line, as two words', ['build', '--symlink_prefix', 'out-', '//:x'], { prefix: 'out-' }],
  ['an rc line of an inherited command', ['test', '--default_override=0:build=--symlink_prefix=rc-', '//:x'], { prefix: 'rc-' }],
  ['the command line over an rc line', ['test', '--default_override=0:build=--symlink_prefix=rc-', '--symlink_prefix=cl-'], { prefix: 'cl-' }],
  ['an rc line of another command', ['build', '--default_override=0:test=--symlink_prefix=rc-'], { prefix: 'bazel-' }],
  ['after --', ['build', '--', '--symlink_prefix=x-'], { prefix: 'bazel-' }],
  ['/: no links', ['build', '--symlink_prefix=/'], { none: true }],
  ['a directory', ['build', '--symlink_prefix=out/'], { refused: '--symlink_prefix=out/ (a prefix naming a directory)' }],
  [
    'a --config in use',
    ['build', '--default_override=0:build:ci=--symlink_prefix=ci-', '--config=ci'],
    { refused: '--symlink_prefix in the rc lines of --config=ci' },
  ],
  ['a --config not in use', ['build', '--default_override=0:build:ci=--symlink_prefix=ci-'], { prefix: 'bazel-' }],
])('--symlink_prefix from %s', (_what, args, expected) => {
  expect(symlinkPrefixOf(args)).toEqual(expected);
});

test('the names of the links Bazel may write at the top of the workspace, for every prefix it may use', () => {
  const roles = (prefix: string) => ['bin', 'out', 'testlogs', 'ws', 'genfiles'].map((role) => `${prefix}${role}`);
  expect(linkNamesOf(['build'], 'ws')).toEqual(roles('bazel-'));
  expect(linkNamesOf(['build', '--symlink_prefix=cl-'], 'ws')).toEqual([...roles('cl-'), 'bazel-out']);
  expect(linkNamesOf(['build', '--symlink_prefix='], 'ws')).toEqual([...roles(''), 'bazel-out']);
  const configured = ['build', '--default_override=0:build:ci=--symlink_prefix=ci-', '--config=ci', '--symlink_prefix=cl-'];
  expect(linkNamesOf(configured, 'ws')).toEqual([...roles('ci-'), 'bazel-out', ...roles('cl-'), 'bazel-out']);
  expect(linkNamesOf(['build', '--symlink_prefix=/'], 'ws')).toEqual([]);
  expect(linkNamesOf(['build', '--symlink_prefix=dir/'], 'ws')).toEqual([]);
});

test('the build event file the developer gave, or none', () => {
  expect(effectiveOption(['build', '--build_event_json_file=/x.json'], 'build_event_json_file')).toEqual({ value: '/x.json' });
  expect(effectiveOption(['coverage', '--default_override=0:test=--build_event_json_file=/rc.json'], 'build_event_json_file')).toEqual({ value: '/rc.json' });
  expect(effectiveOption(['build', '--build_event_json_file_path_conversion=false'], 'build_event_json_file')).toBeUndefined();
  const configured = [
    'build',
    '--default_override=0:build=--build_event_json_file=/a',
    '--default_override=0:build:ci=--build_event_json_file=/b',
    '--config=ci',
  ];
  expect(effectiveOption(configured, 'build_event_json_file')).toEqual({
    unknown: '--build_event_json_file in the rc lines of --config=ci',
    candidates: ['/a', '/b'],
  });
  // `always` (Bazel 7) applies to every command; a --config given in an rc line is in use too.
  expect(effectiveOption(['test', '--default_override=0:always=--build_event_json_file=/always.json'], 'build_event_json_file')).toEqual({
    value: '/always.json',
  });
  const rcConfigured = ['build', '--default_override=0:build=--config=ci', '--default_override=0:build:ci=--build_event_json_file=/b'];
  expect(effectiveOption(rcConfigured, 'build_event_json_file')).toEqual({
    unknown: '--build_event_json_file in the rc lines of --config=ci',
    candidates: ['/b'],
  });
  const otherCommand = ['build', '--default_override=0:test=--config=ci', '--default_override=0:build:ci=--build_event_json_file=/b'];
  expect(effectiveOption(otherCommand, 'build_event_json_file')).toBeUndefined();
  // A config an rc line turns on expands among the rc lines: the command line still wins.
  expect(effectiveOption([...rcConfigured, '--build_event_json_file=/mine'], 'build_event_json_file')).toEqual({ value: '/mine' });
});

test('rc lines as the client sends them: a word each, so `--flag value` is two; configs that configs turn on', () => {
  const option = (command: string, word: string) => `--default_override=2:${command}=${word}`;
  expect(effectiveOption(['build', option('build', '--build_event_json_file'), option('build', '/x.json')], 'build_event_json_file')).toEqual({
    value: '/x.json',
  });
  expect(effectiveOption(['build', '--default_override=2:build=--symlink_prefix', '--default_override=3:build=x-'], 'symlink_prefix')).toEqual({ value: '' }); // another line's word is not its value
  const nested = [
    'build',
    option('common', '--config'),
    option('common', 'ci'),
    option('build:ci', '--config=remote.v2'),
    option('build:remote.v2', '--build_event_json_file=/r.json'),
  ];
  expect(effectiveOption(nested, 'build_event_json_file')).toEqual({
    unknown: '--build_event_json_file in the rc lines of --config=remote.v2',
    candidates: ['/r.json'],
  });
  const fromCommandLine = ['build', '--config', 'ci', option('build:ci', '--config=remote'), option('build:remote', '--symlink_prefix=r-')];
  expect(effectiveOption(fromCommandLine, 'symlink_prefix')).toEqual({ unknown: '--symlink_prefix in the rc lines of --config=remote', candidates: ['r-'] });
  expect(effectiveOption(['build', option('build:ci', '--config=ci'), '--config=ci'], 'symlink_prefix')).toBeUndefined(); // a config that turns itself on ends
});

test('--enable_platform_specific_config turns on the config of the platform the Bazel server runs on, where the flag stands', () => {
  const option = (command: string, word: string) => `--default_override=1:${command}=${word}`;
  const platformLines = [option('build:linux', '--symlink_prefix=lx-'), option('build:macos', '--symlink_prefix=mac-')];
  const rcEnabled = ['build', option('common', '--enable_platform_specific_config'), ...platformLines];
  const linuxOnly = (candidates: string[]) => ({ unknown: '--symlink_prefix in the rc lines of --config=linux', candidates });
  // Turned on in an rc line: it expands among the rc lines, as a config an rc line turns on; the command line still wins.
  expect(effectiveOption(rcEnabled, 'symlink_prefix', 'linux')).toEqual(linuxOnly(['lx-']));
  expect(effectiveOption(rcEnabled, 'symlink_prefix', 'darwin')).toEqual({
    unknown: '--symlink_prefix in the rc lines of --config=macos',
    candidates: ['mac-'],
  });
  expect(effectiveOption([...rcEnabled, '--symlink_prefix=mine-'], 'symlink_prefix', 'linux')).toEqual({ value: 'mine-' });
  // Bazel's other platforms are `unknown` to it.
  expect(
    effectiveOption(['build', option('common', '--enable_platform_specific_config'), option('build:unknown', '--symlink_prefix=u-')], 'symlink_prefix', 'aix'),
  ).toMatchObject({ candidates: ['u-'] });
  // Turned on by the command line, or by a config given there: as a config given there.
  expect(effectiveOption(['build', ...platformLines, '--enable_platform_specific_config=yes', '--symlink_prefix=mine-'], 'symlink_prefix', 'linux')).toEqual(
    linuxOnly(['lx-', 'mine-']),
  );
  const fromCliConfig = ['build', option('build:ci', '--enable_platform_specific_config'), ...platformLines, '--config=ci', '--symlink_prefix=mine-'];
  expect(effectiveOption(fromCliConfig, 'symlink_prefix', 'linux')).toEqual(linuxOnly(['lx-', 'mine-']));
  // Off: never given, given false, turned off last, or only in a config not in use.
  expect(effectiveOption(['build', ...platformLines], 'symlink_prefix', 'linux')).toBeUndefined();
  expect(effectiveOption(['build', option('common', '--enable_platform_specific_config=false'), ...platformLines], 'symlink_prefix', 'linux')).toBeUndefined();
  expect(effectiveOption([...rcEnabled, '--noenable_platform_specific_config'], 'symlink_prefix', 'linux')).toBeUndefined();
  expect(effectiveOption(['build', option('build:ci', '--enable_platform_specific_config'), ...platformLines], 'symlink_prefix', 'linux')).toBeUndefined();
  // Where which of the flag's values wins depends on where configs stand, the platform's options are unknown, not guessed.
  const cliConfigOverRc = [
    'build',
    option('build:ci', '--enable_platform_specific_config'),
    option('build', '--noenable_platform_specific_config'),
    ...platformLines,
    '--config=ci',
  ];
  expect(effectiveOption(cliConfigOverRc, 'symlink_prefix', 'linux')).toEqual(linuxOnly(['lx-']));
  const rcConfig = [
    'build',
    option('build', '--config=foo'),
    option('build', '--enable_platform_specific_config'),
    option('build:foo', '--noenable_platform_specific_config'),
    ...platformLines,
  ];
  expect(effectiveOption(rcConfig, 'symlink_prefix', 'linux')).toEqual(linuxOnly(['lx-']));
  // Every boolean Bazel takes.
  for (const yes of ['t', 'Y', '1', 'yes', 'TRUE']) {
    expect(effectiveOption(['build', option('common', `--enable_platform_specific_config=${yes}`), ...platformLines], 'symlink_prefix', 'linux')).toEqual(
      linuxOnly(['lx-']),
    );
  }
  // The config's own lines may turn on others.
  const nested = [
    'build',
    option('common', '--enable_platform_specific_config'),
    option('build:linux', '--config=fast'),
    option('build:fast', '--symlink_prefix=f-'),
  ];
  expect(effectiveOption(nested, 'symlink_prefix', 'linux')).toEqual({ unknown: '--symlink_prefix in the rc lines of --config=fast', candidates: ['f-'] });
});

test('a boolean option, as Bazel reads it: --name, --noname, --name=<bool>, the command line over rc lines, unknown where a config decides', () => {
  const flag = 'experimental_no_product_name_out_symlink';
  expect(effectiveFlag(['build'], flag)).toBeUndefined();
  expect(effectiveFlag(['build', `--${flag}`], flag)).toEqual({ value: true });
  expect(effectiveFlag(['build', `--${flag}=n`], flag)).toEqual({ value: false });
  expect(effectiveFlag(['build', `--default_override=0:common=--${flag}`, `--no${flag}`], flag)).toEqual({ value: false });
  expect(effectiveFlag(['build', `--default_override=0:build=--${flag}=yes`], flag)).toEqual({ value: true });
  expect(effectiveFlag(['build', `--${flag}=maybe`], flag)).toBeUndefined(); // Bazel refuses the command
  expect(effectiveFlag(['build', `--default_override=0:build:x=--${flag}`, '--config=x'], flag)).toEqual({
    unknown: `--${flag} in the rc lines of --config=x`,
  });
  // clean reads build's rc lines, as Bazel's clean does.
  expect(effectiveOption(['clean', '--default_override=0:build=--symlink_prefix=cl-'], 'symlink_prefix')).toEqual({ value: 'cl-' });
  expect(BUILDING_COMMANDS.has('clean')).toBe(false);
});

test('a build event file: output groups through nested named sets, test outputs, no duplicates, file URIs only', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-bep-'));
  try {
    const file = path.join(dir, 'bep.json');
    const events = [
      { id: { namedSet: { id: '1' } }, namedSetOfFiles: { files: [{ name: 'b', uri: 'file:///ob/b%20c' }] } },
      {
        id: { namedSet: { id: '0' } },
        namedSetOfFiles: {
          files: [
            { name: 'a', uri: 'file:///ob/a' },
            { name: 'r', uri: 'bytestream://cache/r' },
          ],
          fileSets: [{ id: '1' }],
        },
      },
      {
        id: { targetCompleted: { label: '//:t' } },
        completed: { success: true, outputGroup: [{ name: 'default', fileSets: [{ id: '0' }] }], importantOutput: [{ uri: 'file:///ob/a' }] },
      },
      { id: { testResult: { label: '//:t' } }, testResult: { testActionOutput: [{ name: 'test.log', uri: 'file:///ob/t/test.log' }] } },
    ];
    fs.writeFileSync(file, events.map((e) => JSON.stringify(e)).join('\n'));
    expect((await outputsInBuildEvents(file)).sort()).toEqual(['/ob/a', '/ob/b c', '/ob/t/test.log']);
    fs.appendFileSync(file, '\n{"id": {"targetCompleted": {}}, "completed": {"outputGroup": [{"fileSets": [{"id": "9"}]}]}}\n');
    await expect(outputsInBuildEvents(file)).rejects.toThrow(`${file}: the named set of files 9 is referenced but never defined`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
