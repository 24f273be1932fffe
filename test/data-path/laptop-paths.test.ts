/**
 * What the developer reads names their own machine's paths: compile errors, `bazel info`, build
 * event files, and what build code prints, rewritten from the agent's paths with nothing else
 * touched. Flags naming laptop places outside the workspace are mapped or refused by name. The
 * stock client, proxy, agent and Bazel server, all real.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { useStack } from '../harness/stack';
import { type BazelWorkspace, remoteOf, workspaceOfNewUser, writeFiles } from './fixture';

jest.setTimeout(240_000);

const stack = useStack();
let ws: BazelWorkspace;

beforeAll(async () => {
  ws = await workspaceOfNewUser(stack(), 'laptop-paths');
  writeFiles(ws.workspace, {
    // Build code printing what could fool a rewriter: a real path, look-alikes, a cut-off prefix, bytes that are not UTF-8.
    'noisy/noisy.sh': [
      '#!/bin/sh',
      'src=$(readlink -f "$0")',
      'ws=${src%/noisy/noisy.sh}',
      'printf \'real=%s/noisy/noisy.sh\\n\' "$ws"',
      'printf \'lookalike=%s-other x%s\\n\' "$ws" "$ws"',
      'printf \'partial=%s\\n\' "${ws%?}"',
      "printf 'bytes=\\377\\376\\303\\050\\n'",
      '',
    ].join('\n'),
    'noisy/BUILD': 'genrule(name = "noisy", srcs = ["noisy.sh"], outs = ["noisy.txt"], cmd = "$(location noisy.sh) >&2; touch $@")\n',
    'lib/hello-greet.cc': '#include "lib/hello-greet.h"\nstd::string greeting(const std::string& who) { return nope; }\n',
    // Overridden on the command line below: Bazel writes only the command line's file, and so does RBS.
    '.bazelrc': `build --build_event_json_file=${path.join(ws.root, 'events', 'from-rc.json')}\n`,
  });
});
afterAll(() => ws?.destroy());

test('a failing C++ build with colours: errors, build output and the build event files name laptop paths', async () => {
  const bep = path.join(ws.root, 'events', 'bep.json');
  const bepText = path.join(ws.root, 'events', 'bep.txt');
  const cache = path.join(ws.root, 'outside-cache');
  fs.mkdirSync(path.dirname(bep));
  const { child, done } = ws.start([
    'build',
    ...ws.buildOptions,
    '--keep_going',
    '--color=yes',
    `--build_event_json_file=${bep}`,
    `--build_event_text_file=${bepText}`,
    `--disk_cache=${cache}`,
    '//main:hello-world',
    '//noisy',
  ]);
  const stderrBytes: Buffer[] = [];
  child.stderr!.on('data', (chunk: Buffer) => stderrBytes.push(chunk));
  const result = await done;
  const stderr = Buffer.concat(stderrBytes).toString('latin1');
  expect(result.code).toBe(1);
  const remote = await remoteOf(stack(), ws);
  const volume = path.dirname(remote.workspace);

  expect(stderr).toMatch(new RegExp(`\\x1b\\[[0-9;]*m${escape(ws.workspace)}/lib/BUILD:1:11: Compiling lib/hello-greet.cc failed`));
  // What the build printed: only the real path rewritten, every other byte as it was.
  expect(stderr).toContain(`real=${ws.workspace}/noisy/noisy.sh\n`);
  expect(stderr).toContain(`lookalike=${remote.workspace}-other x${remote.workspace}\n`);
  expect(stderr).toContain(`partial=${remote.workspace.slice(0, -1)}\n`);
  expect(stderr).toContain('bytes=\xff\xfe\xc3\x28\n');
  const lookalikes = new RegExp(`lookalike=.*\\n|partial=.*\\n`, 'g');
  expect(stderr.replace(lookalikes, '')).not.toContain(volume);

  // The build event file where the developer asked, in laptop paths.
  expect(fs.readdirSync(path.dirname(bep)).sort()).toEqual(['bep.json', 'bep.txt']);
  const events = fs.readFileSync(bep, 'utf8');
  const parsed = events
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
  expect(parsed.find((e) => e.started)?.started.workspaceDirectory).toBe(ws.workspace);
  expect(parsed.find((e) => e.optionsParsed)?.optionsParsed.explicitCmdLine).toEqual(
    expect.arrayContaining([`--build_event_json_file=${bep}`, `--disk_cache=${cache}`]),
  );
  const progress = parsed.flatMap((e) => e.progress?.stderr ?? []).join('');
  expect(progress).toMatch(new RegExp(`\\x1b\\[[0-9;]*m${escape(ws.workspace)}/lib/BUILD:1:11: Compiling`));
  expect(progress).toContain(`real=${ws.workspace}/noisy/noisy.sh\n`);
  // No agent place but the look-alike the build printed; the agent's HOME and PATH stay, as the build's environment.
  const text = fs.readFileSync(bepText, 'latin1');
  expect(text).toContain(`workspace_directory: "${ws.workspace}"`);
  const placesNamed = [events, text].join('').split(`${remote.workspace}-other x${remote.workspace}`).join('');
  for (const place of [remote.workspace, remote.outputBase, path.join(volume, 'command-files'), path.join(volume, 'flag-dirs')]) {
    expect(placesNamed).not.toContain(place);
  }

  // The laptop's cache path became a cache of its own on the volume.
  expect(fs.existsSync(cache)).toBe(false);
  expect(fs.readdirSync(path.join(volume, 'flag-dirs'))).toEqual([expect.stringMatching(/^disk_cache-[0-9a-f]{16}$/)]);
});

test('bazel info names the laptop workspace and output base, and says which values are the remote machine’s', async () => {
  const result = await ws.bazel(['info', 'workspace', 'bazel-bin', 'install_base']);
  expect(result.code).toBe(0);
  expect(result.stdout).toContain(`workspace: ${ws.workspace}\n`);
  expect(result.stdout).toContain(`bazel-bin: ${ws.outputBase}/execroot/__main__/bazel-out/k8-fastbuild/bin\n`);
  expect(result.stderr).toContain('RBS: install_base is a place on the remote machine that runs the build, not on this one.');
});

test("a failing test's log is named by its path under the laptop's output base", async () => {
  const result = await ws.bazel(['test', ...ws.buildOptions, '//:fail']);
  expect(result.code).toBe(3);
  expect(result.stdout + result.stderr).toContain(`${ws.outputBase}/execroot/__main__/bazel-out/k8-fastbuild/testlogs/fail/test.log`);
  expect(result.stdout + result.stderr).not.toContain(path.dirname((await remoteOf(stack(), ws)).workspace));
});

test('an output file RBS cannot bring back is refused by its flag, and nothing runs', async () => {
  const profile = path.join(ws.root, 'profile.gz');
  const result = await ws.bazel(['build', ...ws.buildOptions, `--profile=${profile}`, '//:gen']);
  expect(result.code).toBe(2);
  expect(result.stderr).toContain(`RBS cannot honour --profile: it writes ${profile}`);
  expect(fs.existsSync(profile)).toBe(false);
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
