/**
 * The hint for a build that failed on a source the sync left out, read off Bazel 4.2.3's own
 * messages (captured from a local build of each case).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ignoredInputHint, ignoredInputWatch, missingSources } from '../../lib/sync/ignored-input-hint';

const WS = '/home/dev/ws';
const BAZEL_4_2_3: Record<string, { stderr: string; sources: string[] }> = {
  "a genrule's source": {
    stderr: `ERROR: ${WS}/BUILD:1:8: Executing genrule //:g failed: missing input file '//:gen.txt'\nTarget //:g failed to build\n`,
    sources: ['gen.txt'],
  },
  'a source in a subdirectory of a package': {
    stderr: `ERROR: ${WS}/BUILD:4:8: Executing genrule //:j failed: missing input file '//:sub/inner.txt'\n`,
    sources: ['sub/inner.txt'],
  },
  'a file of another package': {
    stderr:
      `ERROR: ${WS}/BUILD:2:8: no such target '//gen:x.txt': target 'x.txt' not declared in package 'gen' (did you mean 'y.txt'?) ` +
      `defined by ${WS}/gen/BUILD and referenced by '//:h'\n`,
    sources: ['gen/x.txt'],
  },
  'a package whose BUILD file is missing': {
    stderr:
      `ERROR: ${WS}/BUILD:3:8: no such package 'nopkg': BUILD file not found in any of the following directories. Add a BUILD file to a directory to mark it as a package.\n` +
      ` - ${WS}/nopkg and referenced by '//:i'\n`,
    sources: ['nopkg/BUILD.bazel', 'nopkg/BUILD'],
  },
  'a load() of a missing .bzl file': {
    stderr: `ERROR: error loading package '': cannot load '//tools:defs.bzl': no such file\n`,
    sources: ['tools/defs.bzl'],
  },
  'a header the compiler cannot find': {
    stderr: 'lib/a.cc:1:10: fatal error: gen/config.h: No such file or directory\n',
    sources: ['gen/config.h'],
  },
  'nothing missing': { stderr: `ERROR: ${WS}/BUILD:3:11: Compiling lib/a.cc failed: (Exit 1)\n`, sources: [] },
  'a path climbing out, or absolute, is never looked up (the text comes from the agent)': {
    stderr: "missing input file '//:../../etc/passwd'\nfatal error: /etc/shadow: No such file or directory\n",
    sources: [],
  },
};

test.each(Object.entries(BAZEL_4_2_3))('%s', (_name, { stderr, sources }) => {
  expect(missingSources(stderr)).toEqual(sources);
});

test('the hint names only sources on the laptop that the sync left out, and says how to send them', () => {
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-hint-'));
  try {
    execFileSync('git', ['init', '-q'], { cwd: ws, env: process.env });
    const files = {
      '.gitignore': 'gen/\n*.txt\n',
      'gen/config.h': 'ignored',
      'a.txt': 'ignored but included',
      'sent.h': 'sent',
      '.rbs.json': '{"sync": {"include": ["a.txt"], "exclude": ["big"]}}',
      'big/x.h': 'excluded',
    };
    for (const [file, content] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(ws, file)), { recursive: true });
      fs.writeFileSync(path.join(ws, file), content);
    }
    const stderr = [
      'fatal error: gen/config.h: No such file or directory',
      'fatal error: sent.h: No such file or directory',
      "missing input file '//:a.txt'",
      "missing input file '//:absent.txt'",
      "missing input file '//big:x.h'",
    ].join('\n');
    const hint = ignoredInputHint(stderr, ws)!;
    expect(hint).toContain('could not find big/x.h, gen/config.h, which exist in');
    expect(hint).toContain(`"sync.include" in ${path.join(ws, '.rbs.json')}`);
    expect(hint).toContain('{"sync": {"include": ["big/x.h","gen/config.h"]}}');
    expect(ignoredInputHint("missing input file '//:sent.h'", ws)).toBeNull();

    // As a stream: a message split across chunks, and the hint only before a failed command's end.
    const watch = ignoredInputWatch(ws);
    expect(watch.hintBefore({ standardError: Buffer.from('ERROR: x: fatal error: gen/con') })).toBeNull();
    expect(watch.hintBefore({ standardError: Buffer.from('fig.h: No such file or directory\n') })).toBeNull();
    expect(watch.hintBefore({ finished: true, exitCode: 0 })).toBeNull();
    expect(watch.hintBefore({ finished: true, exitCode: 1 })?.toString()).toContain('gen/config.h');
  } finally {
    fs.rmSync(ws, { recursive: true, force: true });
  }
});
