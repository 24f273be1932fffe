/**
 * The notice Bazel prints only for the agent's own build event file is taken out, and nothing else.
 * The captures are real Bazel's (the development build these tests run), without and with
 * --build_event_json_file, from near their ends: on a terminal (curses and colours) and without one.
 */
import { EventFileNoticeFilter, NOTICE_HOLD_MS } from '../../services/agent/event-file-notice';
import { onlyOwnEventFile } from '../../services/agent/outputs';

const FAILED = '\x1b[31m\x1b[1mFAILED:\x1b[0m Build did NOT complete successfully (0 packages loaded)\r\n';
const CAPTURES = {
  'a build, without a terminal': {
    local:
      'Target //:gen up-to-date:\n  bazel-bin/gen.txt\nINFO: Elapsed time: 0.178s, Critical Path: 0.01s\nINFO: 1 process: 1 internal.\n' +
      'INFO: Build completed successfully, 1 total action\nINFO: Build completed successfully, 1 total action\n',
    withEventFile:
      'Target //:gen up-to-date:\n  bazel-bin/gen.txt\nINFO: Elapsed time: 0.237s, Critical Path: 0.01s\nINFO: 1 process: 1 internal.\n' +
      'INFO: Build completed successfully, 1 total action\nINFO: Build Event Protocol files produced successfully.\n' +
      'INFO: Build completed successfully, 1 total action\nINFO: Build completed successfully, 1 total action\n',
  },
  'a build, on a terminal': {
    local:
      '\r\x1b[1A\x1b[KTarget //:gen up-to-date:\r\n\x1b[32m[1 / 1]\x1b[0m checking cached actions\r\n\r\x1b[1A\x1b[K  bazel-bin/gen.txt\r\n' +
      '\x1b[32m[1 / 1]\x1b[0m checking cached actions\r\n\r\x1b[1A\x1b[K\x1b[32mINFO: \x1b[0mElapsed time: 0.192s, Critical Path: 0.00s\r\n' +
      '\x1b[32m[1 / 1]\x1b[0m checking cached actions\r\n\r\x1b[1A\x1b[K\x1b[32mINFO: \x1b[0m1 process: 1 internal.\r\n' +
      '\x1b[32m[1 / 1]\x1b[0m checking cached actions\r\n\r\x1b[1A\x1b[K\x1b[32mINFO:\x1b[0m Build completed successfully, 1 total action\r\n' +
      '\r\x1b[1A\x1b[K\x1b[32mINFO:\x1b[0m Build completed successfully, 1 total action\r\n\x1b[0m',
    withEventFile:
      '\r\x1b[1A\x1b[KTarget //:gen up-to-date:\r\n\x1b[32m[1 / 1]\x1b[0m checking cached actions\r\n\r\x1b[1A\x1b[K  bazel-bin/gen.txt\r\n' +
      '\x1b[32m[1 / 1]\x1b[0m checking cached actions\r\n\r\x1b[1A\x1b[K\x1b[32mINFO: \x1b[0mElapsed time: 0.156s, Critical Path: 0.00s\r\n' +
      '\x1b[32m[1 / 1]\x1b[0m checking cached actions\r\n\r\x1b[1A\x1b[K\x1b[32mINFO: \x1b[0m1 process: 1 internal.\r\n' +
      '\x1b[32m[1 / 1]\x1b[0m checking cached actions\r\n\r\x1b[1A\x1b[K\x1b[32mINFO:\x1b[0m Build completed successfully, 1 total action\r\n' +
      '\r\x1b[1A\x1b[K\x1b[32mINFO: \x1b[0mBuild Event Protocol files produced successfully.\r\n' +
      '\x1b[32mINFO:\x1b[0m Build completed successfully, 1 total action\r\n' +
      '\r\x1b[1A\x1b[K\x1b[32mINFO:\x1b[0m Build completed successfully, 1 total action\r\n\x1b[0m',
  },
  'a target that does not exist, without a terminal': {
    local:
      'INFO: Elapsed time: 0.130s\nINFO: 0 processes.\nFAILED: Build did NOT complete successfully (0 packages loaded)\n' +
      'FAILED: Build did NOT complete successfully (0 packages loaded)\n',
    withEventFile:
      'INFO: Elapsed time: 0.077s\nINFO: 0 processes.\nFAILED: Build did NOT complete successfully (0 packages loaded)\n' +
      'INFO: Build Event Protocol files produced successfully.\nFAILED: Build did NOT complete successfully (0 packages loaded)\n',
  },
  'a target that does not exist, on a terminal': {
    local:
      '\r\x1b[1A\x1b[K\x1b[32mINFO: \x1b[0mElapsed time: 0.068s\r\n\x1b[32mAnalyzing:\x1b[0m 0 targets (0 packages loaded)\r\n' +
      '\r\x1b[1A\x1b[K\x1b[32mINFO: \x1b[0m0 processes.\r\n\x1b[32mAnalyzing:\x1b[0m 0 targets (0 packages loaded)\r\n' +
      `\r\x1b[1A\x1b[K${FAILED}\r\x1b[1A\x1b[K${FAILED}\x1b[0m`,
    withEventFile:
      '\r\x1b[1A\x1b[K\x1b[32mINFO: \x1b[0mElapsed time: 0.081s\r\n\x1b[32mAnalyzing:\x1b[0m 0 targets (0 packages loaded)\r\n' +
      '\r\x1b[1A\x1b[K\x1b[32mINFO: \x1b[0m0 processes.\r\n\x1b[32mAnalyzing:\x1b[0m 0 targets (0 packages loaded)\r\n' +
      `\r\x1b[1A\x1b[K${FAILED}\r\x1b[1A\x1b[K\x1b[32mINFO: \x1b[0mBuild Event Protocol files produced successfully.\r\n` +
      `${FAILED}\r\x1b[1A\x1b[K${FAILED}\x1b[0m`,
  },
  'a run of what is not executable, without a terminal': {
    local:
      'INFO: Elapsed time: 0.095s\nINFO: 0 processes.\nFAILED: Build did NOT complete successfully (0 packages loaded)\n' +
      'ERROR: Build failed. Not running target\nFAILED: Build did NOT complete successfully (0 packages loaded)\n',
    withEventFile:
      'INFO: Elapsed time: 0.134s\nINFO: 0 processes.\nFAILED: Build did NOT complete successfully (0 packages loaded)\n' +
      'ERROR: Build failed. Not running target\nINFO: Build Event Protocol files produced successfully.\n' +
      'FAILED: Build did NOT complete successfully (0 packages loaded)\n',
  },
};

/** The one thing two runs of the same build print differently. */
const sameTimes = (text: string) => text.replace(/\d+\.\d+s/g, 'N.NNs');

/** `text` through a new filter in the chunks `cuts` make, then flushed. */
function filtered(text: string, cuts: number[]): string {
  const filter = new EventFileNoticeFilter();
  const bounds = [0, ...cuts, text.length];
  const parts = bounds.slice(1).map((end, i) => filter.write(Buffer.from(text.slice(bounds[i], end), 'latin1')));
  return Buffer.concat([...parts, filter.flush()]).toString('latin1');
}

describe.each(Object.entries(CAPTURES))('%s', (_, { local, withEventFile }) => {
  it('what is left is what local Bazel prints, however the stream is cut', () => {
    expect(sameTimes(filtered(withEventFile, []))).toBe(sameTimes(local));
    for (let cut = 1; cut < withEventFile.length; cut++) expect(sameTimes(filtered(withEventFile, [cut]))).toBe(sameTimes(local));
    const everyByte = Array.from({ length: withEventFile.length - 1 }, (_, i) => i + 1);
    expect(sameTimes(filtered(withEventFile, everyByte))).toBe(sameTimes(local));
  });

  it('a stream without the notice passes unchanged', () => {
    expect(filtered(local, [])).toBe(local);
    expect(filtered(local, [local.length >> 1])).toBe(local);
  });
});

describe('EventFileNoticeFilter, against what a build prints', () => {
  const notice = 'INFO: Build Event Protocol files produced successfully.\n';
  const status = 'INFO: Build completed successfully, 2 total actions\n';

  it('the notice printed by a build (a Bazel run inside a test, say) and followed by more output goes out unchanged; the real one is still taken out', () => {
    const build = ['INFO: From Testing //:nested:\n', notice, ...Array.from({ length: 40 }, (_, i) => `line ${i}\n`)].join('');
    expect(filtered(build + status + notice + status, [])).toBe(build + status + status);
  });

  it("a test's log with a nested Bazel's notice, shown within a few lines of the end: that notice stays, Bazel's goes", () => {
    const log = ['INFO: From Testing //:it:\n', '==== Test output for //:it:\n', notice, 'FAIL: expected 3 targets, got 2\n', '====\n'].join('');
    expect(filtered(log + status + notice + status, [])).toBe(log + status + status);
  });

  it('on a terminal, lines after a notice printed by a build are never taken for the status bar drawn again', () => {
    const erase = '\r\x1b[1A\x1b[K';
    const fake = `${erase.repeat(16)}\x1b[32mINFO: \x1b[0mBuild Event Protocol files produced successfully.\r\n`;
    const errors = Array.from({ length: 16 }, (_, i) => `ERROR: important line ${i}\r\n`).join('');
    const end = `${erase}\x1b[32mINFO:\x1b[0m Build completed successfully, 2 total actions\r\n`;
    const bazels = `${erase}\x1b[32mINFO: \x1b[0mBuild Event Protocol files produced successfully.\r\n\x1b[32mINFO:\x1b[0m Build completed successfully, 2 total actions\r\n`;
    expect(filtered(fake + errors + end + bazels + end, [])).toBe(fake + errors + end + end);
  });

  it('a "notice" that erases more than a status bar has lines, or moves the cursor elsewhere, is not the notice', () => {
    const many = `${'\r\x1b[1A\x1b[K'.repeat(100_000)}${notice}`;
    const later = 'ERROR: another action failed\n'.repeat(5);
    expect(filtered(many + later, [])).toBe(many + later);
    for (const move of ['\x1b[1A', '\x1b[5A', '\x1b[H', '\x1b[2J']) {
      const inside = `\x1b[32mINFO: \x1b[0m${move}Build Event Protocol files produced successfully.\n${later}`;
      expect(filtered(inside, [])).toBe(inside);
    }
  });

  it('a notice followed by silence goes out, with what came after it, once held for NOTICE_HOLD_MS', () => {
    jest.useFakeTimers();
    try {
      const filter = new EventFileNoticeFilter();
      expect(filter.write(Buffer.from(notice + status)).toString()).toBe('');
      expect(filter.idle().toString()).toBe('');
      jest.advanceTimersByTime(NOTICE_HOLD_MS);
      expect(filter.idle().toString()).toBe(notice + status);
      expect(filter.write(Buffer.from('more\n')).toString()).toBe('more\n');
    } finally {
      jest.useRealTimers();
    }
  });

  it('holds back no more than a line: a long tail after the notice lets it all go', () => {
    const filter = new EventFileNoticeFilter();
    expect(filter.write(Buffer.from(notice)).toString()).toBe('');
    const long = 'x'.repeat(5000);
    expect(filter.write(Buffer.from(long)).toString()).toBe(notice + long);
  });

  it('on a terminal, a status bar of several lines is drawn again after the notice: all of them go', () => {
    const status =
      '\x1b[31m\x1b[1mFAILED:\x1b[0m Build did NOT complete successfully (0 packages loaded, 0 targets conf\\\r\nigured)\r\n    currently loading: @bazel_tools//src/tools/launcher\r\n';
    const erase = '\r\x1b[1A\x1b[K'.repeat(3);
    const start = `${erase}\x1b[31m\x1b[1mERROR: \x1b[0mCouldn't start the build. Unable to run tests\r\n${status}`;
    const end = `${erase}${status}\x1b[0m`;
    const withEventFile = `${start}${erase}\x1b[32mINFO: \x1b[0mBuild Event Protocol files produced successfully.\r\n${status}${end}`;
    for (let cut = 0; cut < withEventFile.length; cut += 7) expect(filtered(withEventFile, cut ? [cut] : [])).toBe(start + end);
  });

  it('without a terminal, the status line comes before or after the notice as often as timing has it (a failed test, three runs): twice is left, as local Bazel prints it', () => {
    const status = 'INFO: Build completed, 1 test FAILED, 2 total actions\n';
    const notice = 'INFO: Build Event Protocol files produced successfully.\n';
    const start = 'INFO: Elapsed time: 0.486s, Critical Path: 0.22s\nINFO: 2 processes: 2 linux-sandbox.\n';
    for (const run of [
      [status, notice, status, status],
      [status, notice, status],
      [status, status, notice, status],
    ]) {
      const withEventFile = start + run.join('');
      for (let cut = 0; cut < withEventFile.length; cut += 5) expect(filtered(withEventFile, cut ? [cut] : [])).toBe(start + status + status);
    }
  });

  it('without a terminal, after events that follow the status line (a `bazel run`), one final status line is left, wherever the copies fall', () => {
    const status = 'INFO: Build completed successfully, 1 total action\n';
    const notice = 'INFO: Build Event Protocol files produced successfully.\n';
    const running = 'INFO: Running command line: external/bazel_tools/tools/test/test-setup.sh ./pass\n';
    const local = status + running + status;
    for (const run of [
      [status, running, notice, status],
      [status, running, status, notice, status],
      [status, running, notice, status, status],
    ]) {
      expect(filtered(run.join(''), [])).toBe(local);
    }
  });

  it('without a terminal, a line after the notice that is not the status line again stays', () => {
    const text =
      'INFO: Build completed successfully, 1 total action\nINFO: Build Event Protocol files produced successfully.\nRBS: a note\nINFO: Build completed successfully, 1 total action\n';
    expect(filtered(text, [])).toBe('INFO: Build completed successfully, 1 total action\nRBS: a note\nINFO: Build completed successfully, 1 total action\n');
  });

  it('takes out only a whole line that reads as the notice, and of several only the last, as Bazel prints its own last', () => {
    const text = [
      'echo INFO: Build Event Protocol files produced successfully.', // a build's own output, in a line of its own
      'INFO: Build Event Protocol files produced successfully. (not quite)',
      'INFO: Build Event Protocol files produced successfully.',
      'INFO: a line that is not the one before the notice',
      'INFO: Build Event Protocol files produced successfully.',
      'INFO: Build Event Protocol files produced successfully.',
      '',
    ].join('\n');
    expect(filtered(text, [])).toBe(
      [
        'echo INFO: Build Event Protocol files produced successfully.',
        'INFO: Build Event Protocol files produced successfully. (not quite)',
        'INFO: Build Event Protocol files produced successfully.',
        'INFO: a line that is not the one before the notice',
        'INFO: Build Event Protocol files produced successfully.',
        '',
      ].join('\n'),
    );
  });

  it('a line whose start already went out is never cut in half', () => {
    const filter = new EventFileNoticeFilter();
    const sent = [filter.write(Buffer.from('INFO: Build Ev')), filter.flush(), filter.write(Buffer.from('ent Protocol files produced successfully.\nnext\n'))];
    expect(Buffer.concat(sent).toString()).toBe('INFO: Build Event Protocol files produced successfully.\nnext\n');
  });

  it('holds back only what may still become the notice: other output goes out at once', () => {
    const filter = new EventFileNoticeFilter();
    expect(filter.write(Buffer.from('\x1b[32m[3 / 7]\x1b[0m Compiling a.cc\r\n')).toString()).toBe('\x1b[32m[3 / 7]\x1b[0m Compiling a.cc\r\n');
    expect(filter.write(Buffer.from('Compiling b.cc')).toString()).toBe('Compiling b.cc');
    expect(filter.write(Buffer.from('\n')).toString()).toBe('\n');
    expect(filter.write(Buffer.from('\x1b[32mINFO: \x1b[0mBuild')).toString()).toBe('');
    expect(filter.write(Buffer.from(' started\n')).toString()).toBe('\x1b[32mINFO: \x1b[0mBuild started\n');
  });
});

describe('onlyOwnEventFile: whether local Bazel would not print the notice', () => {
  it.each([
    [['build', '//:gen'], true],
    [['test', '--build_event_json_file=', '//:t'], true], // turned off: the agent's own is the only one
    [['build', '--build_event_json_file=/tmp/mine.json', '//:gen'], false],
    [['build', '--build_event_text_file', 'events.txt', '//:gen'], false],
    [['build', '--default_override=0:build=--build_event_text_file=/x.txt', '//:gen'], false],
    [['build', '--config=ci', '--default_override=0:build:ci=--build_event_json_file=/x.json', '//:gen'], false],
    [['build', '--default_override=0:build=--config=ci', '--default_override=0:build:ci=--build_event_text_file=/x.txt', '//:gen'], false],
    [['test', '--default_override=0:always=--build_event_text_file=/x.txt', '//:t'], false],
    [['info'], false], // no file is added to a command that does not build
    [['build', '--', '--build_event_text_file=/x'], true], // a target pattern, not a flag
  ])('%j: %s', (args, expected) => expect(onlyOwnEventFile(args)).toBe(expected));
});
