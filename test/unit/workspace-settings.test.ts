import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULT_SETTINGS, parseWorkspaceSettings, readWorkspaceSettings, WorkspaceSettingsError } from '../../lib/workspace-settings';

const FILE = '/ws/.rbs.json';

test('a workspace without .rbs.json gets the defaults', () => {
  const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-settings-'));
  try {
    expect(readWorkspaceSettings(workspace)).toEqual({ sync: { include: [], exclude: [] }, outputs: 'toplevel', run: 'auto' });
    expect(readWorkspaceSettings(workspace)).toBe(DEFAULT_SETTINGS);
  } finally {
    fs.rmSync(workspace, { recursive: true });
  }
});

test('a full file is read, and its paths made canonical', () => {
  const text = JSON.stringify({ sync: { include: ['./gen/version.h', 'out/'], exclude: ['data//big/'] }, outputs: 'all', run: 'remote' });
  expect(parseWorkspaceSettings(text, FILE)).toEqual({
    sync: { include: ['gen/version.h', 'out'], exclude: ['data/big'] },
    outputs: 'all',
    run: 'remote',
  });
});

test.each([
  ['not JSON', '{sync:', `${FILE}: is not valid JSON`],
  ['a list at the top', '[]', `${FILE}: must be a JSON object`],
  ['an unknown setting (a typo must not be ignored)', '{"output": "all"}', `${FILE}: "output" is not a setting (known: sync, outputs, run)`],
  ['an unknown sync key', '{"sync": {"includes": []}}', `${FILE}: "sync.includes" is not a setting`],
  ['an outputs mode Bazel does not have', '{"outputs": "minimal"}', `${FILE}: "outputs" must be one of "toplevel", "all", "none", not "minimal"`],
  ['a run mode that is not a string', '{"run": true}', `${FILE}: "run" must be one of "auto", "local", "remote", not true`],
  ['include that is not a list', '{"sync": {"include": "gen"}}', `${FILE}: "sync.include" must be a list`],
  ['an absolute path', '{"sync": {"include": ["/etc/passwd"]}}', `${FILE}: "sync.include[0]" must be relative to the workspace, not absolute: "/etc/passwd"`],
  ['a path leaving the workspace', '{"sync": {"exclude": ["a/../../x"]}}', `${FILE}: "sync.exclude[0]" must name a path inside the workspace`],
  ['the workspace itself', '{"sync": {"exclude": ["./"]}}', `${FILE}: "sync.exclude[0]" must name a path inside the workspace`],
  ['an empty path', '{"sync": {"include": ["ok", ""]}}', `${FILE}: "sync.include[1]" must be a non-empty path`],
  ['a control character', '{"sync": {"include": ["a\\nb"]}}', `${FILE}: "sync.include[0]" holds a control character`],
])('refused: %s', (_what, text, message) => {
  let error: unknown;
  try {
    parseWorkspaceSettings(text, FILE);
  } catch (err) {
    error = err;
  }
  expect(error).toBeInstanceOf(WorkspaceSettingsError);
  expect((error as Error).message).toContain(message);
});

test('an unreadable .rbs.json is refused with its path, not taken for an absent one', () => {
  const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'rbs-settings-'));
  try {
    fs.mkdirSync(path.join(workspace, '.rbs.json')); // reading a directory fails with EISDIR
    expect(() => readWorkspaceSettings(workspace)).toThrow(`${path.join(workspace, '.rbs.json')}: cannot be read`);
  } finally {
    fs.rmSync(workspace, { recursive: true });
  }
});
