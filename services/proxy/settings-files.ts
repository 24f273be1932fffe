/**
 * Ignore rules the workspace watch cannot see change: `.git/info/exclude` (the watch skips .git)
 * and git's global excludes file, outside the workspace. Compared by stat at every take; a change
 * (ctime included, which no one can set back) means a full sync.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** Changes whenever one of the files does. */
export function settingsFingerprint(workspace: string): string {
  return ruleFiles(workspace).map(fingerprint).join('\n');
}

function fingerprint(file: string): string {
  const s = fs.statSync(file, { throwIfNoEntry: false, bigint: true });
  return s ? `${file} ${s.dev}:${s.ino} ${s.size} ${s.mtimeNs} ${s.ctimeNs}` : `${file} absent`;
}

const globalExcludes = new Map<string, string[]>();

/** The files, resolved once per workspace: the global config naming core.excludesFile is among them. */
function ruleFiles(workspace: string): string[] {
  let files = globalExcludes.get(workspace);
  if (!files) {
    const config = process.env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config');
    files = [path.join(os.homedir(), '.gitconfig'), path.join(config, 'git', 'config'), path.join(config, 'git', 'ignore')];
    const named = coreExcludesFile(workspace);
    if (named) files.push(named);
    globalExcludes.set(workspace, files);
  }
  return [path.join(workspace, '.git', 'info', 'exclude'), ...files];
}

function coreExcludesFile(workspace: string): string | null {
  try {
    const named = execFileSync('git', ['config', '--path', '--get', 'core.excludesFile'], {
      cwd: workspace,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    return named ? path.resolve(workspace, named) : null;
  } catch {
    return null; // unset, or no git: nothing more to compare
  }
}
