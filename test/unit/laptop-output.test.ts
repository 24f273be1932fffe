import type { RunResponse__Output } from '../../gen/proto/command_server/RunResponse';
import { NOTICE_HOLD_MS } from '../../services/agent/event-file-notice';
import { IDLE_FLUSH_MS, laptopOutput } from '../../services/agent/laptop-output';
import { infoNote } from '../../services/agent/laptop-info';

const PAIRS = [['/vol/v1/workspace', '/home/dev/proj']] as const;
const out = (standardOutput = '', standardError = '', finished = false): RunResponse__Output =>
  ({
    standardOutput: Buffer.from(standardOutput),
    standardError: Buffer.from(standardError),
    finished,
    exitCode: finished ? 1 : 0,
    commandId: 'c1',
  }) as RunResponse__Output;
const text = (sent: RunResponse__Output[]) => sent.map((r) => `${r.standardOutput}|${r.standardError}${r.finished ? '|done' : ''}`);

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

describe('laptopOutput', () => {
  it('rewrites stdout and stderr each on its own: a path begun on one is not finished by the other', () => {
    const sent: RunResponse__Output[] = [];
    const output = laptopOutput(PAIRS, (r) => sent.push(r));
    output.send(out('at /vol/v1/work', ''));
    output.send(out('', 'space/x /vol/v1/workspace/BUILD\n'));
    output.send(out('space/BUILD\n', ''));
    expect(text(sent)).toEqual(['at |', '|space/x /home/dev/proj/BUILD\n', '/home/dev/proj/BUILD\n|']);
  });

  it('lets a held tail go, unchanged, once nothing has come for a while, so progress lines are not delayed', () => {
    const sent: RunResponse__Output[] = [];
    const output = laptopOutput(PAIRS, (r) => sent.push(r));
    output.send(out('', '[3 / 7] Compiling /vol/v1/work'));
    expect(text(sent)).toEqual(['|[3 / 7] Compiling ']);
    jest.advanceTimersByTime(IDLE_FLUSH_MS);
    expect(text(sent)).toEqual(['|[3 / 7] Compiling ', '|/vol/v1/work']);
  });

  it('sends what it holds when the command ends without a final response (the server failed)', () => {
    const sent: RunResponse__Output[] = [];
    const output = laptopOutput(PAIRS, (r) => sent.push(r));
    output.send(out('/vol/v1/workspace', ''));
    output.close();
    jest.advanceTimersByTime(IDLE_FLUSH_MS * 10);
    expect(text(sent)).toEqual(['|', '/home/dev/proj|']); // the end of the stream ends the path
  });

  it('puts whatever is held, and the note, into the final response; nothing is sent after it', () => {
    const sent: RunResponse__Output[] = [];
    const output = laptopOutput(PAIRS, (r) => sent.push(r), { note: 'RBS: a note.\n' });
    output.send(out('/vol/v1/workspace', '/vol/v1/workspace'));
    output.send(out('', '', true));
    output.close();
    jest.advanceTimersByTime(IDLE_FLUSH_MS * 10);
    expect(text(sent)).toEqual(['|', '/home/dev/proj|/home/dev/proj' + 'RBS: a note.\n|done']);
  });
});

describe('laptopOutput of a command given the agent’s own build event file', () => {
  it("waits for the end of the command to tell Bazel's copy of its status line from the final one, within NOTICE_HOLD_MS", () => {
    const sent: RunResponse__Output[] = [];
    const output = laptopOutput(PAIRS, (r) => sent.push(r), { ownEventFile: true });
    const done = 'INFO: Build completed successfully, 2 total actions\n';
    output.send(out('', done));
    output.send(out('', `INFO: Build Event Protocol files produced successfully.\n${done}`));
    jest.advanceTimersByTime(IDLE_FLUSH_MS * 10);
    output.send(out('', done, true));
    expect(sent.map((r) => r.standardError.toString()).join('')).toBe(done + done);
  });

  it('lets a notice that the end of the command does not follow go, with the lines after it, once held NOTICE_HOLD_MS', () => {
    const sent: RunResponse__Output[] = [];
    const output = laptopOutput(PAIRS, (r) => sent.push(r), { ownEventFile: true });
    const held = 'INFO: Build Event Protocol files produced successfully.\nERROR: a nested test failed: see above\n';
    output.send(out('', `INFO: From Testing //:nested:\n${held}`));
    jest.advanceTimersByTime(NOTICE_HOLD_MS - 1);
    expect(sent.map((r) => r.standardError.toString()).join('')).toBe('INFO: From Testing //:nested:\n');
    jest.advanceTimersByTime(IDLE_FLUSH_MS);
    expect(sent.map((r) => r.standardError.toString()).join('')).toBe(`INFO: From Testing //:nested:\n${held}`);
  });
});

describe('infoNote', () => {
  it('names the keys whose values are the remote machine’s, for the keys asked for or for all', () => {
    expect(infoNote(['info', 'workspace', 'bazel-bin'])).toBe('');
    expect(infoNote(['build', '//...'])).toBe('');
    expect(infoNote(['info', '--show_make_env', 'install_base'])).toBe(
      'RBS: install_base is a place on the remote machine that runs the build, not on this one.\n',
    );
    expect(infoNote(['info'])).toBe(
      'RBS: install_base, output_user_root, java-home are places on the remote machine that runs the build, not on this one; ' +
        'server_log, command_log name files that only the remote machine has.\n',
    );
  });
});
