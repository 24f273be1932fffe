/**
 * A developer's Bazel request as the agent's server must see it: the laptop's paths mapped to the
 * agent's, the agent's machine environment, and only the startup options that shape the server.
 */
import * as path from 'node:path';
import type { RunRequest__Output } from '../../gen/proto/command_server/RunRequest';

/** Where the request came from: paths on the developer's machine. */
export interface ClientPaths {
  clientWorkspace: string;
  clientOutputBase?: string;
}

/** What those paths become on the agent, and the agent's environment. */
export interface AgentPaths {
  workspaceDir: string;
  outputBase: string;
  env: NodeJS.ProcessEnv;
}

/**
 * Variables that name places on the machine that runs the command, taken from the agent instead of
 * the laptop. Bazel 4 passes the client's PATH into every action's environment (and so into action
 * keys), and repository rules and tests read all three; the laptop's values are meaningless here.
 * Everything else the client sends is the developer's configuration and passes through.
 */
const MACHINE_ENV = ['PATH', 'HOME', 'TMPDIR'];

/** The server accepts bytes that Bazel treats as Latin-1; this keeps every other byte untouched. */
export const latin1 = (text: string) => Buffer.from(text, 'utf8').toString('latin1');

/**
 * Rewrites paths under `from` (whole paths or their prefixes, at the start of an argument or after
 * `=` or `:`, as in `--client_cwd=`, `--rc_source=`, `--default_override=…=--flag=` and PATH-like
 * lists) to `to`. Longer prefixes win, and each occurrence is rewritten once.
 */
function pathMapper(pairs: [from: string | undefined, to: string][]): (text: string) => string {
  const map = new Map(pairs.flatMap(([from, to]) => (from ? [[latin1(path.resolve(from)), latin1(path.resolve(to))] as const] : [])));
  const alternatives = [...map.keys()].sort((a, b) => b.length - a.length).map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  if (alternatives.length === 0) return (text) => text;
  const pattern = new RegExp(`(?<=^|[=:])(?:${alternatives.join('|')})(?=$|[/:])`, 'g');
  return (text) => text.replace(pattern, (match) => map.get(match)!);
}

/**
 * The client's request as the agent's server must see it: laptop paths mapped to the agent's, and
 * MACHINE_ENV replaced by the agent's values (placed right after the command name, so they stay
 * options whatever follows). Output is mapped back by laptop-command.ts.
 */
export function mapRunRequest(request: RunRequest__Output, client: ClientPaths, agent: AgentPaths): RunRequest__Output {
  const mapPath = pathMapper([
    [client.clientWorkspace, agent.workspaceDir],
    [client.clientOutputBase, agent.outputBase],
  ]);
  const map = (bytes: Buffer) => Buffer.from(mapPath(bytes.toString('latin1')), 'latin1');
  const isMachineEnv = (arg: Buffer) => MACHINE_ENV.some((name) => arg.toString('latin1').startsWith(`--client_env=${name}=`));
  const agentEnv = MACHINE_ENV.flatMap((name) => (agent.env[name] === undefined ? [] : [Buffer.from(`--client_env=${name}=${agent.env[name]}`)]));
  const [command, ...options] = request.arg.filter((arg) => !isMachineEnv(arg)).map(map);
  return {
    ...request,
    arg: command === undefined ? [] : [command, ...agentEnv, ...options],
    startupOptions: request.startupOptions.map(({ option, source }) => ({ option: map(option), source: map(source) })),
  };
}

/**
 * Startup options that shape the server process itself, which the agent's server must be started
 * with: a server started with others is stopped, and the real client starts a new one with these.
 * The rest stay on the laptop: rc-file and client options are already applied to the request, and
 * places (output base, install base, javabase) are the agent's own.
 */
const SERVER_STARTUP_OPTIONS = new Set([
  'host_jvm_args',
  'host_jvm_profile',
  'host_jvm_debug',
  'batch_cpu_scheduling',
  'io_nice_level',
  'shutdown_on_low_sys_mem',
  'idle_server_tasks',
  'write_command_log',
  'expand_configs_in_place',
  'experimental_oom_more_eagerly_threshold',
  'unlimit_coredumps',
  'watchfs',
  'fatal_event_bus_exceptions',
  'incompatible_enable_execution_transition',
]);

/** The request's startup options (as the client gives them, in order) that the server must have. */
export function serverStartupArgs(options: RunRequest__Output['startupOptions']): string[] {
  return options
    .map(({ option }) => option.toString('latin1'))
    .filter((option) => {
      const name = /^--(?:no)?([a-z_]+)(?:=|$)/.exec(option)?.[1];
      return name !== undefined && (SERVER_STARTUP_OPTIONS.has(name) || (name.startsWith('no') && SERVER_STARTUP_OPTIONS.has(name.slice(2))));
    });
}
