/**
 * Bazel options as a RunRequest carries them (command first, rc lines as
 * `--default_override=N:<command>=<option>`), read as the server would for the few the data path needs.
 */

/** The commands that build, each with the commands whose rc lines apply to it (Bazel's inheritance). */
const INHERITS: Record<string, string[]> = {
  build: ['always', 'common', 'build'],
  test: ['always', 'common', 'build', 'test'],
  run: ['always', 'common', 'build', 'run'],
  coverage: ['always', 'common', 'build', 'test', 'coverage'],
};

/** Commands that build, and so leave outputs. */
export const BUILDING_COMMANDS: ReadonlySet<string> = new Set(Object.keys(INHERITS));

/**
 * The value a single-valued option has: the command line's last, else the last rc line's of a
 * command the request's command inherits from; undefined when it is not given. An rc line of a
 * --config in use is not modelled (its place depends on where --config stands): `unknown` names it,
 * and `candidates` are every value the option is given, one of which Bazel uses.
 */
export type EffectiveOption = { value: string } | { unknown: string; candidates: string[] } | undefined;

export function effectiveOption(args: string[], name: string): EffectiveOption {
  const [command = '', ...options] = args;
  const applies = new Set(INHERITS[command] ?? ['always', 'common', command]);
  const end = options.indexOf('--');
  const own = end < 0 ? options : options.slice(0, end);
  // In use: a --config on the command line, or in an rc line of a command this one inherits from.
  const configs = new Set(
    own.flatMap((arg, i) => {
      const rcConfig = /^--default_override=\d+:([^=:]+)=--config=(.+)$/s.exec(arg);
      if (rcConfig) return applies.has(rcConfig[1]) ? [rcConfig[2]] : [];
      return arg.startsWith('--config=') ? [arg.slice(9)] : arg === '--config' ? [own[i + 1]] : [];
    }),
  );
  const flag = `--${name}`;
  let fromRc: string | undefined;
  let fromCommandLine: string | undefined;
  let unknown: string | undefined;
  const candidates: string[] = [];
  for (let i = 0; i < own.length; i++) {
    const arg = own[i];
    const rc = /^--default_override=\d+:([^=:]+)(?::([^=]+))?=(.*)$/s.exec(arg);
    if (rc) {
      const [, rcCommand, config, option] = rc;
      if (!applies.has(rcCommand) || (option !== flag && !option.startsWith(`${flag}=`))) continue;
      if (config === undefined) candidates.push((fromRc = option.slice(flag.length + 1)));
      else if (configs.has(config)) {
        unknown ??= `${flag} in the rc lines of --config=${config}`;
        candidates.push(option.slice(flag.length + 1));
      }
    } else if (arg.startsWith(`${flag}=`)) candidates.push((fromCommandLine = arg.slice(flag.length + 1)));
    else if (arg === flag) candidates.push((fromCommandLine = own[++i] ?? ''));
  }
  if (unknown) return { unknown, candidates };
  const value = fromCommandLine ?? fromRc;
  return value === undefined ? undefined : { value };
}
