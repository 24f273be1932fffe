/**
 * Where a `bazel run` target runs. `.rbs.json`'s `run` sets it for the workspace; the client's
 * environment variable RBS_RUN (which reaches the proxy as `--client_env=RBS_RUN=…`) overrides it
 * for one command. `auto`: on this machine when it has the agent's OS and architecture and the
 * target is a plain program; else on the agent, saying why.
 */
import { type RunMode, readWorkspaceSettings } from '../../lib/workspace-settings';
import type { RunTarget__Output } from '../../lib/run-target';

export const RUN_MODE_VARIABLE = 'RBS_RUN';
const MODES: readonly RunMode[] = ['auto', 'local', 'remote'];

export type RunPlace = { where: 'local' } | { where: 'remote'; why: string };

/** The last `--client_env=RBS_RUN=…` of the client's arguments, if any. */
function requestedMode(args: string[]): RunMode | undefined {
  const prefix = `--client_env=${RUN_MODE_VARIABLE}=`;
  const value = args
    .filter((arg) => arg.startsWith(prefix))
    .at(-1)
    ?.slice(prefix.length);
  if (value === undefined || value === '') return undefined;
  if (!MODES.includes(value as RunMode)) throw new Error(`${RUN_MODE_VARIABLE} must be one of ${MODES.join(', ')}, not ${JSON.stringify(value)}`);
  return value as RunMode;
}

/** Throws, saying why and what to do, when the run cannot happen where it was asked to. */
export function runPlace(target: RunTarget__Output, args: string[], workspace: string): RunPlace {
  const mode = requestedMode(args) ?? readWorkspaceSettings(workspace).run;
  if (mode === 'remote') return { where: 'remote', why: `asked for (${RUN_MODE_VARIABLE} or .rbs.json "run")` };
  const elsewhere =
    target.remoteOnlyReason ||
    (target.platform !== process.platform || target.arch !== process.arch
      ? `the agent is ${target.platform}/${target.arch}, this machine ${process.platform}/${process.arch}`
      : '');
  if (!elsewhere) return { where: 'local' };
  if (mode === 'auto') return { where: 'remote', why: elsewhere };
  throw new Error(`cannot run this target on this machine: ${elsewhere}. Run it on the agent with ${RUN_MODE_VARIABLE}=remote`);
}
