/**
 * A stamp of the files, besides .gitignore (whose changes the workspace watch reports), that decide
 * the source set: the repository's .git/info/exclude and config, the user's git config and
 * core.excludesFile, and the workspace's .rbs.json. A sync of changed paths is exact only while it
 * equals the stamp of the last full sync; otherwise everything is synced again.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SETTINGS_FILE } from '../workspace-settings';
import { gitEnv } from './git-view';

export async function sourceRulesStamp(workspace: string): Promise<string> {
  const [gitPaths, excludesFile] = await Promise.all([
    gitOutput(workspace, ['rev-parse', '--git-path', 'info/exclude', '--git-path', 'config']),
    gitOutput(workspace, ['config', '--path', '--get', 'core.excludesFile']),
  ]);
  const xdg = process.env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config');
  const files = [
    path.join(workspace, SETTINGS_FILE),
    ...gitPaths.split('\n').filter(Boolean).map((file) => path.resolve(workspace, file)),
    path.join(os.homedir(), '.gitconfig'),
    path.join(xdg, 'git', 'config'),
    excludesFile.trim() ? path.resolve(workspace, excludesFile.trim()) : path.join(xdg, 'git', 'ignore'),
  ];
  return files
    .map((file) => {
      const stat = fs.statSync(file, { throwIfNoEntry: false, bigint: true });
      return `${file}:${stat ? `${stat.mtimeNs}:${stat.ctimeNs}:${stat.size}:${stat.ino}` : '-'}`;
    })
    .join('\n');
}

/** git's stdout, or '' when it has nothing to say (not a repository, no such setting). */
function gitOutput(dir: string, args: string[]): Promise<string> {
  return new Promise((resolve) => execFile('git', args, { cwd: dir, env: gitEnv() }, (err, stdout) => resolve(err ? '' : stdout)));
}
