import { PathRewriter } from '../../lib/bazel/path-rewriter';

const PAIRS = [
  ['/vol/v1/workspace', '/home/dev/proj'],
  ['/vol/v1/output_base', '/home/dev/.cache/bazel/_bazel_dev/0123'],
] as const;

/** Streams `input` through a rewriter cut into the given chunks, flushing at the end. */
function streamed(input: Buffer, cuts: number[]): Buffer {
  const rewriter = new PathRewriter(PAIRS);
  const out: Buffer[] = [];
  let at = 0;
  for (const cut of [...cuts, input.length]) {
    out.push(rewriter.write(input.subarray(at, cut)));
    at = cut;
  }
  out.push(rewriter.flush());
  return Buffer.concat(out);
}

const once = (text: string | Buffer) => new PathRewriter(PAIRS).rewrite(Buffer.from(text as string, typeof text === 'string' ? 'utf8' : undefined));

describe('PathRewriter', () => {
  const compileError =
    'ERROR: /vol/v1/workspace/lib/BUILD:3:11: Compiling lib/hello-time.cc failed\n' +
    '/vol/v1/output_base/execroot/__main__/bazel-out/k8-fastbuild/bin\r' +
    'in /vol/v1/workspace, see /vol/v1/workspace\n';
  const expected =
    'ERROR: /home/dev/proj/lib/BUILD:3:11: Compiling lib/hello-time.cc failed\n' +
    '/home/dev/.cache/bazel/_bazel_dev/0123/execroot/__main__/bazel-out/k8-fastbuild/bin\r' +
    'in /home/dev/proj, see /home/dev/proj\n';

  it('rewrites whole-path prefixes of both roots', () => {
    expect(once(compileError).toString()).toBe(expected);
  });

  it('gives the same bytes for a split at every offset, and for every pair of splits', () => {
    const input = Buffer.from(compileError);
    for (let i = 0; i <= input.length; i++) expect(streamed(input, [i]).toString()).toBe(expected);
    for (let i = 0; i <= input.length; i += 3) for (let j = i; j <= input.length; j += 5) expect(streamed(input, [i, j]).toString()).toBe(expected);
  });

  it('rewrites paths wrapped in ANSI colour codes (--color=yes), split anywhere', () => {
    const input = Buffer.from('\x1b[31m\x1b[1mERROR: \x1b[0m/vol/v1/workspace/BUILD:1:1\x1b[0m and \x1b[32m/vol/v1/output_base\x1b[0m\n');
    const want = '\x1b[31m\x1b[1mERROR: \x1b[0m/home/dev/proj/BUILD:1:1\x1b[0m and \x1b[32m/home/dev/.cache/bazel/_bazel_dev/0123\x1b[0m\n';
    for (let i = 0; i <= input.length; i++) expect(streamed(input, [i]).toString()).toBe(want);
  });

  it('leaves look-alikes alone: longer names, paths that merely contain a root', () => {
    for (const text of [
      '/vol/v1/workspace-other/x',
      '/vol/v1/workspace2',
      '/x/vol/v1/workspace/a',
      'a/vol/v1/workspace',
      '/vol/v1/work',
      '/vol/v1/workspace.bak',
    ]) {
      expect(once(`${text}\n`).toString()).toBe(`${text}\n`);
    }
  });

  it('rewrites after JSON unicode escapes and escaped colour codes, as build event files write them', () => {
    expect(once('"--client_cwd\\u003d/vol/v1/workspace/lib"').toString()).toBe('"--client_cwd\\u003d/home/dev/proj/lib"');
    // Colour codes inside build event files: ESC as JSON and as protobuf text format write it.
    expect(once('"\\u001b[0m/vol/v1/workspace/BUILD" "\\033[0m/vol/v1/workspace/BUILD"').toString()).toBe(
      '"\\u001b[0m/home/dev/proj/BUILD" "\\033[0m/home/dev/proj/BUILD"',
    );
  });

  it('rewrites after = : quotes and file:// (flags, JSON, build event URIs)', () => {
    expect(once('--x=/vol/v1/workspace "/vol/v1/workspace/a" PATH=/a:/vol/v1/workspace/bin file:///vol/v1/output_base/b').toString()).toBe(
      '--x=/home/dev/proj "/home/dev/proj/a" PATH=/a:/home/dev/proj/bin file:///home/dev/.cache/bazel/_bazel_dev/0123/b',
    );
  });

  it('passes binary and invalid UTF-8 through byte for byte, rewriting only real paths among them', () => {
    const binary = Buffer.from([0x00, 0xff, 0xfe, 0xc3, 0x28, 0x80, 0x2f, 0x76, 0x6f, 0x6c, 0x0a, 0xe2, 0x82]);
    for (let i = 0; i <= binary.length; i++) expect(streamed(binary, [i])).toEqual(binary);
    const mixed = Buffer.concat([Buffer.from([0xff, 0x00]), Buffer.from(' /vol/v1/workspace/x '), Buffer.from([0xc3, 0x28])]);
    const want = Buffer.concat([Buffer.from([0xff, 0x00]), Buffer.from(' /home/dev/proj/x '), Buffer.from([0xc3, 0x28])]);
    for (let i = 0; i <= mixed.length; i++) expect(streamed(mixed, [i])).toEqual(want);
  });

  it('holds back only a tail that could begin a path, and flush gives it back unchanged', () => {
    const rewriter = new PathRewriter(PAIRS);
    expect(rewriter.write(Buffer.from('[1 / 3] compiling\r')).toString()).toBe('[1 / 3] compiling\r');
    expect(rewriter.write(Buffer.from('see /vol/v1/wor')).toString()).toBe('see ');
    expect(rewriter.flush().toString()).toBe('/vol/v1/wor');
    // A whole root waits for the byte after it, which says whether it is the whole name.
    expect(rewriter.write(Buffer.from('at /vol/v1/workspace')).toString()).toBe('at ');
    expect(rewriter.write(Buffer.from('-old\n')).toString()).toBe('/vol/v1/workspace-old\n');
  });

  it('prefers the longer root and writes non-ASCII laptop paths as UTF-8', () => {
    const rewriter = new PathRewriter([
      ['/vol', '/nope'],
      ['/vol/v1/workspace', '/home/dévé/proj'],
    ]);
    expect(rewriter.rewrite(Buffer.from('/vol/v1/workspace/a /vol/b')).toString('utf8')).toBe('/home/dévé/proj/a /nope/b');
  });

  it('escapes replacements for their medium', () => {
    const rewriter = new PathRewriter([['/vol/v1/workspace', '/home/a "quoted"\\dir']], (to) => JSON.stringify(to).slice(1, -1));
    expect(JSON.parse(rewriter.rewrite(Buffer.from('{"p":"/vol/v1/workspace/x"}')).toString())).toEqual({ p: '/home/a "quoted"\\dir/x' });
  });
});
