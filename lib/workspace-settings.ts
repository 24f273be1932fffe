/**
 * A workspace's own RBS settings, in `.rbs.json` at its root, next to WORKSPACE: what the sync adds
 * to or removes from the source set, which outputs come back to the laptop, and where `bazel run`
 * runs. The file travels with the workspace (it is checked in like .bazelrc), so every machine of a
 * team gets the same build. A bad file is refused with its path and the key at fault, never half
 * applied.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const SETTINGS_FILE = '.rbs.json';

/** Mirrors Bazel's --remote_download_outputs: the requested targets' outputs, everything, or nothing. */
export type OutputsMode = 'toplevel' | 'all' | 'none';
/** `auto` runs on the laptop when it shares the agent's OS and architecture, else on the agent. */
export type RunMode = 'auto' | 'local' | 'remote';

export interface WorkspaceSettings {
  sync: {
    /** Workspace-relative paths (files or directories) sent although git ignores them. */
    include: string[];
    /** Workspace-relative paths (files or directories) never sent. */
    exclude: string[];
  };
  outputs: OutputsMode;
  run: RunMode;
}

export const DEFAULT_SETTINGS: WorkspaceSettings = Object.freeze({
  sync: Object.freeze({ include: [], exclude: [] }),
  outputs: 'toplevel',
  run: 'auto',
}) as WorkspaceSettings;

const OUTPUTS_MODES: readonly OutputsMode[] = ['toplevel', 'all', 'none'];
const RUN_MODES: readonly RunMode[] = ['auto', 'local', 'remote'];

export class WorkspaceSettingsError extends Error {
  constructor(
    readonly file: string,
    readonly key: string,
    problem: string,
  ) {
    super(`${file}: ${key === '' ? '' : `"${key}" `}${problem}`);
    this.name = 'WorkspaceSettingsError';
  }
}

/** Reads `<workspace>/.rbs.json`; an absent file means the defaults. */
export function readWorkspaceSettings(workspace: string): WorkspaceSettings {
  const file = path.join(workspace, SETTINGS_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return DEFAULT_SETTINGS;
    throw new WorkspaceSettingsError(file, '', `cannot be read: ${(err as Error).message}`);
  }
  return parseWorkspaceSettings(text, file);
}

/** Parses the text of a settings file; `file` names it in errors. */
export function parseWorkspaceSettings(text: string, file: string): WorkspaceSettings {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new WorkspaceSettingsError(file, '', `is not valid JSON: ${(err as Error).message}`);
  }
  const top = objectAt(raw, file, '', ['sync', 'outputs', 'run']);
  const sync = top.sync === undefined ? {} : objectAt(top.sync, file, 'sync', ['include', 'exclude']);
  return {
    sync: { include: pathsAt(sync.include, file, 'sync.include'), exclude: pathsAt(sync.exclude, file, 'sync.exclude') },
    outputs: choiceAt(top.outputs, file, 'outputs', OUTPUTS_MODES, DEFAULT_SETTINGS.outputs),
    run: choiceAt(top.run, file, 'run', RUN_MODES, DEFAULT_SETTINGS.run),
  };
}

function objectAt(value: unknown, file: string, key: string, known: string[]): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new WorkspaceSettingsError(file, key, 'must be a JSON object');
  }
  const unknown = Object.keys(value).find((name) => !known.includes(name));
  if (unknown !== undefined) {
    const where = key === '' ? unknown : `${key}.${unknown}`;
    throw new WorkspaceSettingsError(file, where, `is not a setting (known: ${known.map((k) => (key === '' ? k : `${key}.${k}`)).join(', ')})`);
  }
  return value as Record<string, unknown>;
}

function choiceAt<T extends string>(value: unknown, file: string, key: string, choices: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !choices.includes(value as T)) {
    throw new WorkspaceSettingsError(file, key, `must be one of ${choices.map((c) => `"${c}"`).join(', ')}, not ${JSON.stringify(value)}`);
  }
  return value as T;
}

/** Workspace-relative paths, canonical (no `./`, no trailing `/`), that stay inside the workspace. */
function pathsAt(value: unknown, file: string, key: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new WorkspaceSettingsError(file, key, 'must be a list of workspace-relative paths');
  return value.map((entry, i) => {
    const at = `${key}[${i}]`;
    if (typeof entry !== 'string' || entry === '') throw new WorkspaceSettingsError(file, at, 'must be a non-empty path');
    if (/[\0-\x1f\x7f]/.test(entry)) throw new WorkspaceSettingsError(file, at, `holds a control character: ${JSON.stringify(entry)}`);
    if (path.isAbsolute(entry)) throw new WorkspaceSettingsError(file, at, `must be relative to the workspace, not absolute: ${JSON.stringify(entry)}`);
    const canonical = path.posix.normalize(entry).replace(/\/+$/, '');
    if (canonical === '.' || canonical === '..' || canonical.startsWith('../')) {
      throw new WorkspaceSettingsError(file, at, `must name a path inside the workspace: ${JSON.stringify(entry)}`);
    }
    return canonical;
  });
}
