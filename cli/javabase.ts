/**
 * `rbs javabase`: prints a directory to give Bazel as --server_javabase. Its bin/java, which the
 * stock client starts in place of its Java server, execs the RBS proxy (exec keeps the pid the
 * client recorded). The client only checks that bin/java exists and is executable.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadConfig } from '../lib/config';
import { installFile } from '../lib/files';
import { repoRoot } from '../lib/local/tools';

const shellQuote = (word: string) => `'${word.replace(/'/g, `'\\''`)}'`;

/** Prints the javabase for this RBS_HOME, writing it first. */
export async function javabase(): Promise<void> {
  console.log(await writeJavabase(loadConfig().home));
}

/** Writes (again: the paths in it may have moved) the javabase for `home`; returns its path. */
export async function writeJavabase(home: string): Promise<string> {
  const dir = path.join(home, 'javabase');
  const proxy = path.join(repoRoot(), 'dist', 'services', 'proxy', 'main.js');
  if (!fs.existsSync(proxy)) throw new Error(`${proxy} is missing: run \`npm run build\``);
  const script = [
    '#!/bin/sh',
    '# Started by the Bazel client in place of its Java server: becomes the RBS proxy.',
    // An RBS_HOME in the client's environment wins; else the one this javabase was made for.
    `RBS_HOME="\${RBS_HOME:-${home.replace(/["\\$`]/g, '\\$&')}}"`,
    'export RBS_HOME',
    `exec ${shellQuote(process.execPath)} ${shellQuote(proxy)} "$@"`,
    '',
  ].join('\n');
  fs.mkdirSync(path.join(dir, 'bin'), { recursive: true });
  await installFile(path.join(dir, 'bin', 'java'), script, 0o755, true);
  return dir;
}
