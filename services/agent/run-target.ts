/**
 * What the agent tells its proxy about a `bazel run`, instead of relaying the exec_request its
 * Bazel server answered with: which program under the output base, with which arguments, and
 * whether anything but the agent could run it. The proxy trusts none of it (it fetches and checks
 * what is named); the exec request itself stays here, for RunRemotely.
 */
import * as path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { parseShellWords } from '../../lib/bazel/shell-words';
import { type RunTarget, runTargetTrailer } from '../../lib/run-target';
import type { ExecRequest__Output } from '../../gen/proto/command_server/ExecRequest';
import type { BazelServer } from './bazel-server';
import { describeFile } from './outputs';
import type { KeptRuns } from './remote-run';

const text = (bytes: Buffer) => bytes.toString('latin1');

/** The RunTarget of `exec` (from our pinned server, for a command on `outputBase`), less its remote_run_id. */
export function describeRun(exec: ExecRequest__Output, outputBase: string, workspace: string): Omit<RunTarget, 'remoteRunId'> {
  const machine = { platform: process.platform, arch: process.arch, outputBase, workspace };
  const remoteOnly = (reason: string) => ({ ...machine, executable: '', args: [], remoteOnlyReason: reason });
  const [shell, dashC, command, ...extra] = exec.argv.map(text);
  if (!shell || !['bash', 'sh'].includes(path.basename(shell)) || dashC !== '-c' || command === undefined || extra.length > 0) {
    return remoteOnly(`Bazel asked to run ${JSON.stringify(exec.argv.map(text))}, which is not a shell command line`);
  }
  const test = exec.environmentVariable.find((v) => text(v.name) === 'TEST_TARGET');
  if (test) return remoteOnly(`${text(test.value)} is a test, which \`bazel run\` runs inside Bazel's test setup`);
  let words: string[];
  try {
    words = parseShellWords(command);
  } catch (err) {
    return remoteOnly(`Bazel's command line cannot be read back: ${(err as Error).message}`);
  }
  const [program, ...args] = words;
  if (words.length >= 3 && shell === program && words[1] === '-c') return remoteOnly('--run_under wraps the program in a command of its own');
  const executable = path.relative(outputBase, program!);
  if (!path.isAbsolute(program!) || executable.startsWith('..') || path.isAbsolute(executable)) {
    return remoteOnly(`the program ${program} is not under the output base ${outputBase}`);
  }
  return { ...machine, executable, args: args.map((arg) => Buffer.from(arg, 'latin1')), remoteOnlyReason: '' };
}

/** The trailer that ends a `bazel run`'s Run stream; the exec request is kept for RunRemotely. */
export async function runTrailer(exec: ExecRequest__Output, bazel: BazelServer, runs: KeptRuns): Promise<grpc.Metadata> {
  const target = describeRun(exec, bazel.outputBase, bazel.workspaceDir);
  const named = target.executable ? [target.executable, `${target.executable}.runfiles/MANIFEST`] : [];
  const files = (await Promise.all(named.map(describeFile(bazel.outputBase)))).flat();
  return runTargetTrailer({ ...target, files, remoteRunId: runs.keep(exec) });
}
