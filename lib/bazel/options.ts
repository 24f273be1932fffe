/**
 * Bazel options as a RunRequest carries them (command first, rc lines as
 * `--default_override=N:<command>=<option>`), read as the server would for the few the data path needs.
 */

/** The commands that build, each with the commands whose rc lines apply to it (Bazel's inheritance). */
const BUILDING: Record<string, string[]> = {
  build: ['always', 'common', 'build'],
  test: ['always', 'common', 'build', 'test'],
  run: ['always', 'common', 'build', 'run'],
  coverage: ['always', 'common', 'build', 'test', 'coverage'],
};
/** Every command whose options the data path reads: clean takes build's too (its --symlink_prefix, say). */
const INHERITS: Record<string, string[]> = { ...BUILDING, clean: ['always', 'common', 'build', 'clean'] };

/** Commands that build, and so leave outputs. */
export const BUILDING_COMMANDS: ReadonlySet<string> = new Set(Object.keys(BUILDING));

/**
 * The value a single-valued option has: the command line's last, else the last rc line's of a
 * command the request's command inherits from; undefined when it is not given. An rc line of a
 * --config in use is not modelled (its place depends on where --config stands): `unknown` names it,
 * and `candidates` are every value the option is given, one of which Bazel uses. A config turned
 * on in an rc line expands among the rc lines, so a command-line value still wins over it. So does
 * the platform's config that --enable_platform_specific_config turns on (`build:linux`, say).
 */
export type EffectiveOption = { value: string } | { unknown: string; candidates: string[] } | undefined;

/** The config --enable_platform_specific_config turns on where the Bazel server runs (Bazel's ConfigExpander; `unknown` for others). */
const PLATFORM_CONFIGS: Partial<Record<NodeJS.Platform, string>> = {
  linux: 'linux',
  darwin: 'macos',
  win32: 'windows',
  freebsd: 'freebsd',
  openbsd: 'openbsd',
};

/** Bazel's BooleanConverter. */
const TRUE_WORDS = ['true', '1', 'yes', 't', 'y'];
const FALSE_WORDS = ['false', '0', 'no', 'f', 'n'];

/** A boolean option's value in one word: `--name`, `--noname`, `--name=<bool>`; undefined if not it (or not a boolean Bazel takes). */
function booleanAt(word: string, name: string): boolean | undefined {
  if (word === `--${name}`) return true;
  if (word === `--no${name}`) return false;
  if (!word.startsWith(`--${name}=`)) return undefined;
  const value = word.slice(name.length + 3).toLowerCase();
  return TRUE_WORDS.includes(value) ? true : FALSE_WORDS.includes(value) ? false : undefined;
}

/** One option of an rc line: `--default_override=N:<command>[:<config>]=<option>`, a word each. */
interface RcOption {
  /** `N:<command>[:<config>]`: the words of one rc line share it. */
  line: string;
  command: string;
  config?: string;
  word: string;
}

const RC_OPTION = /^--default_override=(\d+:([^=:]+)(?::([^=]+))?)=(.*)$/s;

/** `flag`'s value in `words[i]` (`--flag=v`), or in the next word of the same line (`--flag v`); undefined if not `flag`. */
function valueAt<T>(words: T[], i: number, flag: string, word: (w: T) => string, sameLine: (a: T, b: T) => boolean): string | undefined {
  const at = word(words[i]);
  if (at.startsWith(`${flag}=`)) return at.slice(flag.length + 1);
  if (at !== flag) return undefined;
  const next = words[i + 1];
  return next !== undefined && sameLine(words[i], next) ? word(next) : '';
}

/**
 * `platform`: where the Bazel server that reads `args` runs (this process's by default: the agent
 * reads what its Bazel did, the proxy names links as the laptop's Bazel would).
 */
export function effectiveOption(args: string[], name: string, platform: NodeJS.Platform = process.platform): EffectiveOption {
  return effective(args, name, platform, false);
}

/** A boolean option's value (`--name`, `--noname`, `--name=<bool>`), read as effectiveOption reads others. */
export function effectiveFlag(
  args: string[],
  name: string,
  platform: NodeJS.Platform = process.platform,
): { value: boolean } | { unknown: string } | undefined {
  const option = effective(args, name, platform, true);
  return option && 'value' in option ? { value: option.value === 'true' } : option && { unknown: option.unknown };
}

/** `platform` null: the platform's config is left out (to read --enable_platform_specific_config itself). */
function effective(args: string[], name: string, platform: NodeJS.Platform | null, boolean: boolean): EffectiveOption {
  const [command = '', ...options] = args;
  const applies = new Set(INHERITS[command] ?? ['always', 'common', command]);
  const end = options.indexOf('--');
  const own = end < 0 ? options : options.slice(0, end);
  const rc: RcOption[] = [];
  const commandLine: string[] = [];
  for (const arg of own) {
    const m = RC_OPTION.exec(arg);
    if (!m) commandLine.push(arg);
    else if (applies.has(m[2])) rc.push({ line: m[1], command: m[2], config: m[3], word: m[4] });
  }
  const rcValue = (i: number, flag: string) =>
    valueAt(
      rc,
      i,
      flag,
      (o) => o.word,
      (a, b) => a.line === b.line,
    );
  const cliValue = (i: number, flag: string) =>
    valueAt(
      commandLine,
      i,
      flag,
      (w) => w,
      () => true,
    );

  // Configs in use: from the command line, or from rc lines; and those their own rc lines turn on.
  const closure = (start: Iterable<string>) => {
    const configs = new Set([...start].filter(Boolean));
    for (let grew = true; grew;) {
      grew = false;
      rc.forEach((o, i) => {
        const turnedOn = o.config !== undefined && configs.has(o.config) ? rcValue(i, '--config') : undefined;
        if (turnedOn && !configs.has(turnedOn)) {
          configs.add(turnedOn);
          grew = true;
        }
      });
    }
    return configs;
  };
  let fromCli = closure(commandLine.flatMap((_, i) => cliValue(i, '--config') ?? []));
  let fromRcLines = closure(rc.flatMap((o, i) => (o.config === undefined ? (rcValue(i, '--config') ?? []) : [])));

  // The platform's config expands where --enable_platform_specific_config stands: among the rc lines when an
  // rc line decides it, else as a config given on the command line (which makes its options unknown, as when
  // which of the flag's values wins is not known).
  if (platform !== null) {
    const enabling = 'enable_platform_specific_config';
    const enabled = effective(args, enabling, null, true);
    const platformConfig = PLATFORM_CONFIGS[platform] ?? 'unknown';
    const onCommandLine = commandLine.some((word) => booleanAt(word, enabling) !== undefined);
    if (enabled && 'unknown' in enabled) {
      if (enabled.candidates.includes('true')) fromCli = closure([...fromCli, platformConfig]);
    } else if (enabled?.value === 'true') {
      if (onCommandLine) fromCli = closure([...fromCli, platformConfig]);
      else fromRcLines = closure([...fromRcLines, platformConfig]);
    }
  }

  const flag = `--${name}`;
  let fromRc: string | undefined;
  let fromCommandLine: string | undefined;
  let unknown: string | undefined;
  let rcUnknown: string | undefined;
  const candidates: string[] = [];
  const read = (word: string, valueAt: () => string | undefined) => (boolean ? booleanAt(word, name)?.toString() : valueAt());
  rc.forEach((o, i) => {
    const value = read(o.word, () => rcValue(i, flag));
    if (value === undefined) return;
    if (o.config === undefined) candidates.push((fromRc = value));
    else if (fromCli.has(o.config) || fromRcLines.has(o.config)) {
      const which = `${flag} in the rc lines of --config=${o.config}`;
      if (fromCli.has(o.config)) unknown ??= which;
      else rcUnknown ??= which;
      candidates.push(value);
    }
  });
  commandLine.forEach((word, i) => {
    const value = read(word, () => cliValue(i, flag));
    if (value !== undefined) candidates.push((fromCommandLine = value));
  });
  if (unknown) return { unknown, candidates };
  if (fromCommandLine !== undefined) return { value: fromCommandLine };
  if (rcUnknown) return { unknown: rcUnknown, candidates };
  return fromRc === undefined ? undefined : { value: fromRc };
}
