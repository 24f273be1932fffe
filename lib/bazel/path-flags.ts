/**
 * Flags that name places on the developer's machine, and what becomes of them on the agent. Paths
 * inside the laptop's workspace or output base are mapped by the agent's request mapping; this
 * module handles the rest, each flag by an explicit rule:
 *
 * - caches (`--disk_cache`, `--repository_cache`): a directory of their own on the session volume,
 *   one per laptop path, so they stay warm across sessions as the laptop's would;
 * - build event files (`--build_event_json_file`, `--build_event_text_file`): written on the agent,
 *   then brought to the path the developer gave, with laptop paths;
 * - other output files (`--profile`, execution logs, `--build_event_binary_file`, …): refused, as
 *   nothing brings them back yet (the binary event file would need Bazel's protos to re-encode);
 * - laptop inputs (`--distdir`, `--override_repository`, credentials, …): only inside the
 *   workspace, which is synced; anything else is refused;
 * - paths of the machine that runs the actions (`--sandbox_base`, `--shell_executable`, …) and the
 *   client's own bookkeeping (`--rc_source`, `--binary_path`, startup places): passed as they are;
 * - any other flag with an absolute path outside the workspace: refused, since nothing says the
 *   agent can honour it.
 *
 * Every occurrence is mapped, whichever rc-file group it comes from; only occurrences that can apply
 * to the command (their group's command and config) are refused, so an unused `build:prof
 * --profile=…` in a team's .bazelrc does not block every build. Each build event file occurrence
 * gets its own agent path: Bazel's own option rules pick the one it writes, and only that one exists.
 *
 * Arguments are handled as Latin-1 strings of their bytes (lib/bazel/path-rewriter's bytesOf).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type PathPair, bytesOf } from './path-rewriter';

const CACHE_DIRS = new Set(['disk_cache', 'repository_cache', 'experimental_repository_cache']);
export const BUILD_EVENT_FILE_FLAGS = ['build_event_json_file', 'build_event_text_file'] as const;
export type BuildEventFileFlag = (typeof BUILD_EVENT_FILE_FLAGS)[number];
const OUTPUT_FILES = new Set([
  'build_event_binary_file',
  'profile',
  'memory_profile',
  'starlark_cpu_profile',
  'execution_log_json_file',
  'execution_log_binary_file',
  'experimental_execution_log_file',
  'experimental_workspace_rules_log_file',
  'experimental_remote_grpc_log',
  'experimental_repository_resolved_file',
]);
/** Values that are laptop paths the build reads: fine inside the synced workspace, else refused. */
const LAPTOP_INPUTS: Record<string, (value: string) => string[]> = {
  distdir: (v) => [v],
  experimental_distdir: (v) => [v],
  override_repository: (v) => [v.slice(v.indexOf('=') + 1)],
  package_path: (v) => v.split(':').filter((p) => p !== '%workspace%'),
  experimental_resolved_file_instead_of_workspace: (v) => [v],
  workspace_status_command: (v) => [v],
  google_credentials: (v) => [v],
  tls_certificate: (v) => [v],
  tls_client_certificate: (v) => [v],
  tls_client_key: (v) => [v],
  experimental_downloader_config: (v) => [v],
};
/** Paths on the machine that runs the actions (the agent's are meant), or the client's own records. */
const PASSED = new Set([
  'sandbox_base',
  'experimental_sandbox_base',
  'sandbox_tmpfs_path',
  'sandbox_writable_path',
  'sandbox_add_mount_pair',
  'sandbox_block_path',
  'shell_executable',
  'python_path',
  'python2_path',
  'python3_path',
  'test_tmpdir',
  'binary_path',
  'rc_source',
  'client_cwd',
  // Startup options that place the laptop client's own files; the agent's server has its own places.
  'output_user_root',
  'output_base',
  'install_base',
  'server_javabase',
  'bazelrc',
  'failure_detail_out',
]);

export class PathFlagRefused extends Error {
  constructor(
    readonly flag: string,
    reason: string,
  ) {
    super(`RBS cannot honour --${flag}: ${reason}`);
  }
}

/** Where things are on each side. */
export interface PathFlagPlaces {
  /** The laptop's workspace and output base (paths inside them are mapped elsewhere). */
  client: { workspace: string; outputBase?: string };
  /** The session volume, for caches; and this command's own directory, for output files. */
  agent: { volumeDir: string; commandDir: string };
}

export interface BuildEventFile {
  /** Names this occurrence between agent and proxy: the flag and its place among the flag's occurrences. */
  id: string;
  flag: BuildEventFileFlag;
  /** Where the developer asked for it, on the laptop. */
  laptopPath: string;
  /** Where the agent's Bazel writes it. */
  agentPath: string;
}

export interface PathFlagMapping {
  args: Buffer[];
  startupOptions: { option: Buffer; source: Buffer }[];
  buildEventFiles: BuildEventFile[];
  /** Agent path → laptop path for every place mapped here, for rewriting what the developer reads. */
  pairs: PathPair[];
}

/** One flag occurrence: its name, value, and how to put a new value in its place. */
interface FlagUse {
  name: string;
  value: string;
  replace: (value: string) => void;
  /** False for an rc-file group that cannot apply to this command (another command, an unused config). */
  applies: boolean;
}

/** Commands whose options the client's rc groups can feed into a command, besides itself and `common`. */
const INHERITS: Record<string, string[]> = {
  build: [],
  test: ['build'],
  run: ['build'],
  coverage: ['test', 'build'],
  info: ['build'],
  clean: ['build'],
  cquery: ['test', 'build'],
  aquery: ['build'],
  print_action: ['build'],
  'mobile-install': ['build'],
  sync: ['fetch'],
  query: [],
  fetch: [],
  version: [],
  shutdown: [],
  help: [],
};

/** Whether rc group `group` (`<rc index>:<command>[:<config>]`) can apply; unknown commands: yes, to stay loud. */
function groupApplies(group: string, command: string, configs: Set<string>): boolean {
  const [, groupCommand, config] = group.split(':');
  if (config !== undefined && !configs.has(config)) return false;
  if (groupCommand === 'common' || groupCommand === 'always' || groupCommand === command) return true;
  return !(command in INHERITS) || INHERITS[command].includes(groupCommand);
}

const FLAG = /^--([A-Za-z0-9_]+)(?:=(.*))?$/s;
/** The client passes rc-file options as `--default_override=<rc index>:<command[:config]>=<token>`. */
const DEFAULT_OVERRIDE = /^--default_override=([^=]*)=(.*)$/s;

/**
 * The flags with values among `tokens` (one rc-file group or the command line). Only flags of the
 * tables above take a value from the next token (`--disk_cache /x`); others name theirs with `=`.
 */
function flagUses(tokens: { text: string; set: (text: string) => void }[], applies: boolean): FlagUse[] {
  const uses: FlagUse[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const match = FLAG.exec(tokens[i].text);
    if (!match) continue;
    const [, name, inline] = match;
    const token = tokens[i];
    if (inline !== undefined) uses.push({ name, value: inline, replace: (v) => token.set(`--${name}=${v}`), applies });
    else if (takesPathValue(name) && i + 1 < tokens.length) {
      const next = tokens[++i];
      uses.push({ name, value: next.text, replace: (v) => next.set(v), applies });
    }
  }
  return uses;
}

const takesPathValue = (name: string) =>
  CACHE_DIRS.has(name) || OUTPUT_FILES.has(name) || name in LAPTOP_INPUTS || (BUILD_EVENT_FILE_FLAGS as readonly string[]).includes(name);

/** Every flag of a request: its options up to `--`, rc-file groups, and startup options. */
function requestFlags(args: string[], startupOptions: string[]): { uses: FlagUse[]; args: string[]; startupOptions: string[] } {
  const out = { args: [...args], startupOptions: [...startupOptions] };
  const end = args.indexOf('--') < 0 ? args.length : args.indexOf('--');
  const commandLine: Parameters<typeof flagUses>[0] = [];
  const rcGroups = new Map<string, Parameters<typeof flagUses>[0]>();
  for (let i = 1; i < end; i++) {
    const override = DEFAULT_OVERRIDE.exec(args[i]);
    const at = i;
    if (!override) {
      commandLine.push({ text: args[i], set: (text) => (out.args[at] = text) });
      continue;
    }
    const [, group, text] = override;
    if (!rcGroups.has(group)) rcGroups.set(group, []);
    rcGroups.get(group)!.push({ text, set: (t) => (out.args[at] = `--default_override=${group}=${t}`) });
  }
  const startup = startupOptions.map((text, at) => ({ text, set: (t: string) => (out.startupOptions[at] = t) }));
  // Any --config named anywhere may be in force (configs can name configs): more groups apply, never fewer.
  const configs = new Set(args.flatMap((arg) => [...arg.matchAll(/--config=([^\s=]+)/g)].map((m) => m[1])));
  const uses = [
    ...[...rcGroups].flatMap(([group, tokens]) => flagUses(tokens, groupApplies(group, args[0] ?? '', configs))),
    ...flagUses(commandLine, true),
    ...flagUses(startup, true),
  ];
  return { uses, ...out };
}

const hash = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 16);
const utf8 = (bytes: string) => Buffer.from(bytes, 'latin1').toString('utf8');

/**
 * Maps or refuses every path-taking flag of a request whose paths are still the laptop's
 * (PathFlagRefused names the first flag it cannot honour).
 */
export function mapPathFlags(args: Buffer[], startupOptions: { option: Buffer; source: Buffer }[], places: PathFlagPlaces): PathFlagMapping {
  const found = requestFlags(
    args.map((a) => a.toString('latin1')),
    startupOptions.map((o) => o.option.toString('latin1')),
  );
  const roots = [places.client.workspace, places.client.outputBase].flatMap((r) => (r ? [bytesOf(path.resolve(r))] : []));
  const inside = (p: string) => roots.some((root) => p === root || p.startsWith(`${root}/`));
  const cwd = clientCwd(found.args) ?? bytesOf(places.client.workspace);
  const buildEventFiles: BuildEventFile[] = [];
  const pairs: PathPair[] = [];

  for (const use of found.uses) {
    const { name, value } = use;
    if (CACHE_DIRS.has(name)) {
      if (value === '') continue; // turns the cache off
      const laptop = path.resolve(cwd, value);
      const agentPath = path.join(places.agent.volumeDir, 'flag-dirs', `${name}-${hash(laptop)}`);
      use.replace(bytesOf(agentPath));
      pairs.push([agentPath, utf8(laptop)]);
    } else if ((BUILD_EVENT_FILE_FLAGS as readonly string[]).includes(name)) {
      if (value === '') continue;
      const flag = name as BuildEventFileFlag;
      const id = `${flag}-${buildEventFiles.filter((f) => f.flag === flag).length}`;
      const laptopPath = utf8(path.resolve(cwd, value));
      const agentPath = path.join(places.agent.commandDir, id);
      use.replace(bytesOf(agentPath));
      buildEventFiles.push({ id, flag, laptopPath, agentPath });
      pairs.push([agentPath, laptopPath]);
    } else if (!use.applies) {
      continue; // mapped or not, Bazel will not use it
    } else if (OUTPUT_FILES.has(name)) {
      if (value !== '')
        throw new PathFlagRefused(
          name,
          `it writes ${utf8(value)} on the machine that runs the build, and RBS does not bring that file back yet; remove the flag`,
        );
    } else if (name in LAPTOP_INPUTS) {
      const outside = LAPTOP_INPUTS[name](value).filter((p) => p !== '' && !inside(path.resolve(cwd, p)));
      if (outside.length)
        throw new PathFlagRefused(name, `${utf8(outside[0])} is outside the workspace, so the remote build cannot read it; move it into the workspace`);
    } else if (!PASSED.has(name) && value.startsWith('/') && !inside(value)) {
      throw new PathFlagRefused(name, `${utf8(value)} is outside the workspace, and RBS does not know what that flag does with it on the remote machine`);
    }
  }
  return {
    args: found.args.map((a) => Buffer.from(a, 'latin1')),
    startupOptions: startupOptions.map((o, i) => ({ ...o, option: Buffer.from(found.startupOptions[i], 'latin1') })),
    buildEventFiles,
    pairs,
  };
}

/**
 * The build event files a request asks for (flag and laptop path), as the proxy must know them to
 * write them where the developer asked, whatever the agent says.
 */
export function requestedBuildEventFiles(args: Buffer[], client: PathFlagPlaces['client']): Omit<BuildEventFile, 'agentPath'>[] {
  const placeholder = { volumeDir: '/', commandDir: '/' }; // agent places play no part in what the developer asked
  try {
    return mapPathFlags(args, [], { client, agent: placeholder }).buildEventFiles.map(({ id, flag, laptopPath }) => ({ id, flag, laptopPath }));
  } catch (err) {
    if (err instanceof PathFlagRefused) return []; // a refused command runs nothing, so it writes no file either
    throw err;
  }
}

/**
 * The agent-side path of the developer's build event file for `flag`, once the command has run: of
 * the occurrences they gave, the one Bazel wrote (undefined if none).
 */
export function agentBuildEventFile(mapping: Pick<PathFlagMapping, 'buildEventFiles'>, flag: BuildEventFileFlag): string | undefined {
  return mapping.buildEventFiles.find((f) => f.flag === flag && fs.existsSync(f.agentPath))?.agentPath;
}

function clientCwd(args: string[]): string | undefined {
  const arg = args.find((a) => a.startsWith('--client_cwd='));
  return arg?.slice('--client_cwd='.length);
}
