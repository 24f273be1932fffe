/**
 * A stamp of the files, besides .gitignore (whose changes the workspace watch reports), that decide
 * the source set: the repository's .git/info/exclude and config, the user's git config and
 * core.excludesFile, and the workspace's .rbs.json. A sync of changed paths is exact only while it
 * equals the stamp of the last full sync; otherwise everything is synced again.
 *
 * Where those files are is asked of git once per workspace, and again only when a config file
 * (which may move core.excludesFile) or the repository changed: a stamp is otherwise a few stats.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SETTINGS_FILE } from '../workspace-settings';
import { gitEnv } from './git-view';

interface Located {
  /** Files whose change may move the others: git's config files, and the repository itself (.git appearing). */
  configs: string[];
  configsStamp: string;
  /** The files that decide which files git ignores, and .rbs.json. */
  rules: string[];
}

const located = new Map<string, Located>();

export async function sourceRulesStamp(workspace: string): Promise<string> {
  let where = located.get(workspace);
  if (!where || stampOf(where.configs) !== where.configsStamp) {
    where = await locate(workspace);
    located.set(workspace, where);
  }
  return stampOf(where.rules);
}

async function locate(workspace: string): Promise<Located> {
  const [gitPaths, excludesFile] = await Promise.all([
    gitOutput(workspace, ['rev-parse', '--absolute-git-dir', '--git-path', 'info/exclude', '--git-path', 'config']),
    gitOutput(workspace, ['config', '--path', '--get', 'core.excludesFile']),
  ]);
  const [gitDir, exclude, config] = gitPaths.split('\n').map((file) => (file ? path.resolve(workspace, file) : ''));
  const xdg = process.env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config');
  const configs = [
    path.join(workspace, '.git'),
    gitDir,
    config,
    process.env.GIT_CONFIG_GLOBAL || path.join(os.homedir(), '.gitconfig'),
    path.join(xdg, 'git', 'config'),
  ];
  const global = excludesFile.trim() ? path.resolve(workspace, excludesFile.trim()) : path.join(xdg, 'git', 'ignore');
  return { configs, configsStamp: stampOf(configs), rules: [path.join(workspace, SETTINGS_FILE), exclude, global] };
}

function stampOf(files: string[]): string {
  return files
    .map((file) => {
      const stat = file ? fs.statSync(file, { throwIfNoEntry: false, bigint: true }) : undefined;
      if (stat?.isDirectory()) return `${file}:${stat.ino}`; // that it is there: its entries churn with every git command
      return `${file}:${stat ? `${stat.mtimeNs}:${stat.ctimeNs}:${stat.size}:${stat.ino}` : '-'}`;
    })
    .join('\n');
}

/** git's stdout, or '' when it has nothing to say (not a repository, no such setting). */
function gitOutput(dir: string, args: string[]): Promise<string> {
  return new Promise((resolve) => execFile('git', args, { cwd: dir, env: gitEnv() }, (err, stdout) => resolve(err ? '' : stdout)));
}
