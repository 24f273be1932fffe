/**
 * The end of a `bazel run`: the agent's Bazel built the target and the agent named it (a RunTarget).
 * The proxy decides where it runs (run-mode.ts) and answers the client with the final response:
 * its own exec request, which runs the fetched program here (local-run.ts) or the relay to the
 * agent (remote-run.ts); or a failure that says why.
 */
import * as path from 'node:path';
import type { AgentClient } from '../../gen/proto/rbs/v1/Agent';
import type { RunRequest, RunResponse } from './command-server';
import { fetchFromOutputBase } from './fetch';
import type { RunTarget__Output } from '../../lib/run-target';
import { type FetchOutputs, prepareLocalRun } from './local-run';
import { prepareRemoteRun } from './remote-run';
import { runPlace } from './run-mode';

/** Bazel's "command line error", as local Bazel exits when `bazel run` cannot run its target. */
const RUN_FAILED_EXIT_CODE = 2;

interface BazelRun {
  target: RunTarget__Output;
  /** The client's arguments (latin1), for --client_cwd and --client_env. */
  args: string[];
  agent: AgentClient;
  workspace: string;
  outputBase: string;
  fetch: FetchOutputs;
  log: (message: string) => void;
}

export interface RunContext {
  workspace: string;
  outputBase: string;
  log: (message: string) => void;
}

/**
 * One command's `bazel run` part, around the relay of its responses: once the agent names a target,
 * the build's final response is held back and, unless it failed, replaced by the proxy's own.
 */
export function bazelRunOf(request: RunRequest, deliver: (response: RunResponse) => void, { workspace, outputBase, log }: RunContext) {
  const args = request.arg.map((arg) => arg.toString('latin1'));
  let target: RunTarget__Output | undefined;
  let built: RunResponse | undefined;
  return {
    /** The command's end if it must not leave this machine. */
    refused: refusedRunOption(args),
    onResponse: (response: RunResponse) => (target && response.finished ? (built = response) : deliver(response)),
    /** Throws for a command other than `run`: only the developer's `bazel run` may run a program here. */
    onRunTarget(named: RunTarget__Output): void {
      if (args[0] !== 'run') throw new Error(`a program to run, for \`bazel ${args[0] ?? ''}\`, which runs none`);
      target = named;
    },
    /** Once the agent's Run has ended: the final response, if the command was a `bazel run`. */
    async finish(agent: AgentClient, signal: AbortSignal): Promise<void> {
      if (!target || signal.aborted) return;
      if (built?.exitCode) return deliver(built); // its outputs did not arrive
      const fetch = (paths: string[]) => fetchFromOutputBase({ agent, outputBase, paths, signal }).then(() => undefined);
      const response = await finishRun({ target, args, agent, workspace, outputBase, fetch, log });
      if (!signal.aborted) deliver(response); // interrupted meanwhile: nothing is run
    },
  };
}

/** The client's working directory on this machine, as the client reported it; else the workspace. */
function clientCwdOf(args: string[], workspace: string): string {
  const cwd = args
    .filter((arg) => arg.startsWith('--client_cwd='))
    .at(-1)
    ?.slice('--client_cwd='.length);
  return cwd && path.isAbsolute(cwd) ? cwd : workspace;
}

/**
 * `--script_path` has the server write a script that names its own machine's paths, at a path that
 * means nothing there: refused before the command leaves, naming the flag (also from an rc file).
 */
function refusedRunOption(args: string[]): RunResponse | undefined {
  if (args[0] !== 'run' || !args.some((arg) => /(?:^|=)--script_path(?:=|$)/.test(arg))) return undefined;
  const message = 'ERROR: RBS: `bazel run --script_path` is not supported: run the target through RBS instead\n';
  return { standardError: Buffer.from(message), finished: true, exitCode: RUN_FAILED_EXIT_CODE };
}

async function finishRun(run: BazelRun): Promise<RunResponse> {
  const { target, args, workspace } = run;
  const clientCwd = clientCwdOf(args, workspace);
  const started = performance.now();
  try {
    const place = runPlace(target, args, workspace);
    if (place.where === 'local') {
      const execRequest = await prepareLocalRun({ target, workspace, outputBase: run.outputBase, clientCwd, fetch: run.fetch });
      run.log(`bazel run: ${target.executable} fetched and checked in ${Math.round(performance.now() - started)} ms`);
      return { finished: true, exitCode: 0, execRequest };
    }
    const execRequest = await prepareRemoteRun({ agent: run.agent, remoteRunId: target.remoteRunId, clientCwd, log: run.log });
    return { standardError: Buffer.from(`INFO: RBS: running on the agent: ${place.why}\n`), finished: true, exitCode: 0, execRequest };
  } catch (err) {
    run.log(`bazel run: ${(err as Error).message}`);
    return { standardError: Buffer.from(`ERROR: RBS: ${(err as Error).message}\n`), finished: true, exitCode: RUN_FAILED_EXIT_CODE };
  }
}
