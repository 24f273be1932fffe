/** Where the project's own setup (scripts/setup.sh) caches the tools it installs. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const REPO_ROOT = findRepoRoot(__dirname);

function findRepoRoot(from: string): string {
  for (let dir = from; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'scripts', 'versions.env'))) return dir;
  }
  throw new Error(`cannot find the RBS repository root above ${from}`);
}

function versions(): Record<string, string> {
  const text = fs.readFileSync(path.join(REPO_ROOT, 'scripts', 'versions.env'), 'utf8');
  return Object.fromEntries(
    text
      .split('\n')
      .filter((line) => /^[A-Z_]+=/.test(line))
      .map((line) => line.split('=', 2) as [string, string]),
  );
}

export function repoRoot(): string {
  return REPO_ROOT;
}

export function cacheDir(): string {
  return process.env.RBS_CACHE ?? path.join(os.homedir(), '.cache', 'rbs');
}

export function temporalBinary(): string {
  if (process.env.RBS_TEMPORAL_BIN) return process.env.RBS_TEMPORAL_BIN;
  const file = path.join(cacheDir(), `temporal-${versions().TEMPORAL_CLI_VERSION}`, 'temporal');
  if (!fs.existsSync(file)) throw new Error(`Temporal CLI not found at ${file}: run \`npm run setup\``);
  return file;
}
